# The recipe's seed spread (docs/experiments.md): every fold's student distilled with seed 1, the card left alone.
#     python -m training.crossval config/crossval_seed1.py --run_dir=runs/reproduce
student_seed = 1
card = ""
report_dir = "reports/seed1"
