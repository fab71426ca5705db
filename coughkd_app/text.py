"""Every word the app shows, in English, Russian, Spanish and Hindi.

The page's fixed text goes through Gradio's own i18n (`gr.I18n(**TEXT)`: the browser's language picks the
translation); what the server writes for one result (verdict, figure, report) goes through `say`, in the language the
page runs in (`language` of the page's `lang`). Strings are `str.format` templates; every language has the same keys
and the same placeholders (tests/test_app_text.py checks). The Russian, Spanish and Hindi texts, the medical
disclaimer above all, were written by the developer and still need a review by a native speaker.

The figure's labels are drawn by matplotlib in DejaVu Sans, which every matplotlib installation has; it has no
Devanagari, so a Hindi page gets an English figure (FIGURE_LANGUAGES) and Hindi everywhere else.
"""
from __future__ import annotations

import string

LANGUAGES = ("en", "ru", "es", "hi")
DECIMAL_COMMA = ("ru", "es")
FIGURE_LANGUAGES = ("en", "ru", "es")

EN = {
    # the page
    "title": "coughkd — cough COVID-19 screening demo",
    "intro": "Record two or three coughs, or upload a recording (0.3 s to 10 minutes, up to 50 MB), then press "
             "**Analyse**.",
    "disclaimer": "**Research demo — not a medical device and not a diagnosis.** It has not been clinically "
                  "validated: its score comes from a small model trained on a few hundred crowd-sourced recordings, "
                  "and it is often wrong. Do not use it to decide whether you have COVID-19 or what to do about "
                  "your health. If you feel unwell or think you have COVID-19, take a test and follow your health "
                  "service's advice. If you have trouble breathing, chest pain or feel very ill, get medical help "
                  "now.",
    "privacy_local": "Your audio is analysed on the computer running this app and sent nowhere else. "
                     "{kept}",
    "privacy_shared": "This app is shared through a public Gradio link: your audio travels through Gradio's relay "
                      "to the computer running this app, is analysed there and sent nowhere else. {kept}",
    "kept": "The app keeps the uploaded file in a temporary folder of its own, deletes it once it is an hour old "
            "(checked hourly, so within two hours) and deletes the whole folder when it stops, or at its next "
            "start if it was killed; nothing decoded from your audio is kept once the result is shown. The report "
            "is made in your browser, and your results (text, no audio) stay in this browser until you press "
            "Clear history.",
    "recording_label": "Cough recording",
    "analyse": "Analyse",
    "prevalence_label": "How common is COVID-19 around you now? (% of people)",
    "prevalence_info": "Used to say how likely a result is to be right. If you do not know, leave it at 5%.",
    "examples_label": "Example clips (CC0)",
    "placeholder": "Results appear here.",
    "history_heading": "Your results in this browser",
    "history_empty": "Results you get here are listed side by side, newest first.",
    "history_clear": "Clear history",
    "json_label": "API result (JSON)",
    # one result
    "ready": "Ready to analyse {name}. Press Analyse.",
    "result_for": "Result for {name} · {seconds} s · {time}",
    "microphone_recording": "your microphone recording",
    "headline_positive": "Possible sign of COVID-19 in this cough",
    "next_positive": "What to do: take a COVID-19 test (a self-test, or at a pharmacy or clinic) and, until you know, "
                     "keep away from people who could become seriously ill. This app cannot tell you that you have "
                     "COVID-19: it is often wrong.",
    "headline_negative": "No sign of COVID-19 found in this cough",
    "next_negative": "What to do: this does not rule COVID-19 out. If you have symptoms or have been close to someone "
                     "with COVID-19, take a test anyway.",
    "headline_retake": "No result: please record again",
    "next_retake": "Record again, then press Analyse.",
    "reason_clipped": "The recording was too loud: the sound is distorted (clipped).",
    "tip_clipped": "Hold the microphone further away, about an arm's length, and cough as you normally would.",
    "reason_noisy": "There is too much background noise: the coughs barely stand out from it.",
    "tip_noisy": "Move somewhere quiet, switch off fans, music or the television, and hold the microphone closer.",
    "reason_no_cough": "No single cough could be picked out of the recording.",
    "tip_no_cough": "Cough two or three times, with a short pause between coughs and no talking.",
    "reason_short": "The coughs in the recording are too short to analyse.",
    "tip_short": "Record two or three full coughs.",
    "headline_speech": "This sounds like speech, not a cough",
    "headline_breathing": "This sounds like breathing, not a cough",
    "headline_other": "This does not sound like a cough",
    "next_not_cough": "The model gives a COVID-19 result only for coughs. Record two or three coughs close to the "
                      "microphone, with little background noise.",
    "headline_error": "Could not analyse this audio",
    "no_audio": "No audio: record with the microphone or upload a file, then press Analyse.",
    "busy": "Another large recording is being analysed right now. Try again in a minute, or upload a shorter clip "
            "(files up to {megabytes} MB never wait for this).",
    "how_sure": "How sure is it?",
    "per_hundred": "Of 100 people with COVID-19 who record like this, about {caught} are flagged; of 100 people "
                   "without it, about {false_alarms} are flagged.",
    "channel_app": "These figures are for recordings made with a phone app or a browser (the Telegram recordings "
                   "it was checked on).",
    "channel_telephone": "These figures are for telephone recordings, 8 kHz or less, like this one (the call-centre "
                         "recordings it was checked on).",
    "channel_pooled": "These figures are for all the recordings it was checked on: it has none for this kind of "
                      "recording alone.",
    "sample_size": "They come from only {positives} recordings of people with COVID-19 and {negatives} of people "
                   "without, so they are rough: the first number could be anywhere from about {low} to {high}.",
    "predictive": "If {prevalence} in 100 people around you have COVID-19 (set it with the slider), then of the "
                  "people flagged about {ppv} in 100 really have it, and of those not flagged about {npv} in 100 "
                  "really do not.",
    "spread": "Your {count} coughs scored from {low}% to {high}% one by one; the result is for the recording as a "
              "whole.",
    "spread_mixed": "Some coughs scored above the line and some below it, so this result is less certain than one "
                    "where they agree.",
    "full_numbers": "Full numbers",
    "score": "Model score: {score}% (flagged at {threshold}% or more).",
    "score_unreliable": "Model score: {score}%. Not a result: the recording failed the checks above.",
    "heard": "What the model heard: {sounds}.",
    "sound_cough": "cough",
    "sound_speech": "speech",
    "sound_breathing": "breathing",
    "sound_other": "other sound",
    "validation": "On the recordings it was checked on (its validation set), at this threshold:",
    "validation_source": "{channel}: {tp} of {positives} recordings with COVID-19 flagged, {tn} of {negatives} "
                         "without cleared.",
    "source_call-center": "telephone (call centre)",
    "source_telegram": "app (Telegram)",
    "source_pooled": "all",
    "details": "{events} sound events in {seconds} s of audio · decoding and inference {ms} ms · model {model}",
    "checks": "Recording checks: loud-frame crest factor {crest} (clipped below {min_crest} if the decoder saw "
              "full-scale samples), signal-to-noise {snr} dB (at least {min_snr} dB), coughs found: {coughs}, "
              "lasting {cough_seconds} s in all (at least {min_cough_seconds} s).",
    "decoder_notes": "Notes from the decoder (in English): {notes}.",
    "figure_alt": "Waveform and spectrogram of {name}, {seconds} s long, with {events} sound events shaded.",
    "figure_alt_coughs": "{coughs} of them are coughs, scoring {low}% to {high}% each.",
    "figure_waveform": "waveform",
    "figure_bands": "band (0–4 kHz)",
    "figure_time": "time (s)",
    "figure_title_cough": "Sound events (shaded); each cough's score",
    "figure_title_other": "Sound events (shaded) and what each sounds like",
    "figure_title_many": "{events} sound events (shaded)",
    "report_download": "Download report (HTML)",
    "report_title": "coughkd result",
    "report_analysed": "Analysed {time} (browser time); report made {utc} UTC.",
    "report_model": "Model {model}, created {created}.",
    "report_prevalence": "How often a result is right, by how common COVID-19 is",
    "report_prevalence_columns": "People with COVID-19, in 100|Flagged who have it, in 100|Not flagged who do not, "
                                 "in 100",
    "history_score": "score {score}%",
}

RU = {
    "title": "coughkd — демонстрация скрининга COVID-19 по кашлю",
    "intro": "Запишите два-три покашливания или загрузите запись (от 0,3 с до 10 минут, до 50 МБ), затем нажмите "
             "**Анализ**.",
    "disclaimer": "**Исследовательская демонстрация — не медицинское изделие и не диагноз.** Она не прошла "
                  "клинической проверки: оценку выдаёт небольшая модель, обученная на нескольких сотнях записей, "
                  "собранных у добровольцев, и она часто ошибается. Не используйте её, чтобы решить, есть ли у вас "
                  "COVID-19, или что делать со своим здоровьем. Если вы плохо себя чувствуете или думаете, что у вас "
                  "COVID-19, сделайте тест и следуйте рекомендациям вашей службы здравоохранения. Если вам трудно "
                  "дышать, болит в груди или вам очень плохо, немедленно обратитесь за медицинской помощью.",
    "privacy_local": "Ваша запись анализируется на компьютере, где запущено приложение, и никуда больше не "
                     "отправляется. {kept}",
    "privacy_shared": "Приложение открыто по публичной ссылке Gradio: запись проходит через сервер-посредник "
                      "Gradio к компьютеру, где запущено приложение, анализируется там и никуда больше не "
                      "отправляется. {kept}",
    "kept": "Приложение хранит загруженный файл в собственной временной папке, удаляет его, когда ему исполняется "
            "час (проверка раз в час, то есть не позже чем через два часа), и удаляет всю папку при остановке, а "
            "если его принудительно завершили — при следующем запуске; ничего, извлечённого из записи, не хранится "
            "после показа результата. Отчёт создаётся в вашем браузере, а ваши результаты (текст, без звука) "
            "остаются в этом браузере, пока вы не нажмёте «Очистить историю».",
    "recording_label": "Запись кашля",
    "analyse": "Анализ",
    "prevalence_label": "Насколько распространён COVID-19 вокруг вас сейчас? (% людей)",
    "prevalence_info": "Нужно, чтобы сказать, насколько вероятно, что результат верен. Если не знаете, оставьте 5%.",
    "examples_label": "Примеры записей (CC0)",
    "placeholder": "Здесь появятся результаты.",
    "history_heading": "Ваши результаты в этом браузере",
    "history_empty": "Полученные здесь результаты показываются рядом, сначала новые.",
    "history_clear": "Очистить историю",
    "json_label": "Результат API (JSON)",
    "ready": "Готово к анализу: {name}. Нажмите «Анализ».",
    "result_for": "Результат для {name} · {seconds} с · {time}",
    "microphone_recording": "ваша запись с микрофона",
    "headline_positive": "Возможный признак COVID-19 в этом кашле",
    "next_positive": "Что делать: сделайте тест на COVID-19 (домашний экспресс-тест, в аптеке или в поликлинике) и, "
                     "пока не узнаете результат, держитесь подальше от людей, которые могут тяжело заболеть. Это "
                     "приложение не может сказать, что у вас COVID-19: оно часто ошибается.",
    "headline_negative": "Признаков COVID-19 в этом кашле не найдено",
    "next_negative": "Что делать: это не исключает COVID-19. Если у вас есть симптомы или вы были рядом с человеком, "
                     "больным COVID-19, всё равно сделайте тест.",
    "headline_retake": "Нет результата: запишите ещё раз",
    "next_retake": "Запишите ещё раз, затем нажмите «Анализ».",
    "reason_clipped": "Запись слишком громкая: звук искажён (перегружен).",
    "tip_clipped": "Держите микрофон дальше, примерно на расстоянии вытянутой руки, и кашляйте как обычно.",
    "reason_noisy": "Слишком много фонового шума: кашель почти не выделяется на его фоне.",
    "tip_noisy": "Перейдите в тихое место, выключите вентилятор, музыку или телевизор и держите микрофон ближе.",
    "reason_no_cough": "В записи не удалось выделить ни одного отдельного покашливания.",
    "tip_no_cough": "Кашляните два-три раза с короткой паузой между покашливаниями и не разговаривайте.",
    "reason_short": "Покашливания в записи слишком короткие для анализа.",
    "tip_short": "Запишите два-три полных покашливания.",
    "headline_speech": "Это похоже на речь, а не на кашель",
    "headline_breathing": "Это похоже на дыхание, а не на кашель",
    "headline_other": "Это не похоже на кашель",
    "next_not_cough": "Модель даёт результат по COVID-19 только для кашля. Запишите два-три покашливания близко к "
                      "микрофону, при небольшом фоновом шуме.",
    "headline_error": "Не удалось проанализировать эту запись",
    "no_audio": "Нет записи: запишите звук с микрофона или загрузите файл, затем нажмите «Анализ».",
    "busy": "Сейчас анализируется другая большая запись. Попробуйте через минуту или загрузите запись покороче "
            "(файлы до {megabytes} МБ никогда не ждут).",
    "how_sure": "Насколько это надёжно?",
    "per_hundred": "Из 100 человек с COVID-19, которые записываются так же, отмечены будут примерно {caught}; из 100 "
                   "человек без него — примерно {false_alarms}.",
    "channel_app": "Эти цифры относятся к записям, сделанным в приложении на телефоне или в браузере (записи из "
                   "Telegram, на которых проверялась модель).",
    "channel_telephone": "Эти цифры относятся к телефонным записям с частотой 8 кГц или ниже, как эта (записи "
                         "колл-центра, на которых проверялась модель).",
    "channel_pooled": "Эти цифры относятся ко всем записям, на которых проверялась модель: отдельных цифр для "
                      "такого вида записей нет.",
    "sample_size": "Они получены всего по {positives} записям людей с COVID-19 и {negatives} записям людей без него, "
                   "поэтому они приблизительны: первое число может быть где угодно примерно от {low} до {high}.",
    "predictive": "Если COVID-19 есть у {prevalence} из 100 человек вокруг вас (задайте это ползунком), то из "
                  "отмеченных он действительно есть примерно у {ppv} из 100, а из неотмеченных его действительно нет "
                  "примерно у {npv} из 100.",
    "spread": "По отдельности ваши покашливания ({count}) получили оценки от {low}% до {high}%; результат относится "
              "ко всей записи.",
    "spread_mixed": "Часть покашливаний оценена выше порога, часть ниже, поэтому этот результат менее надёжен, чем "
                    "когда они совпадают.",
    "full_numbers": "Все цифры",
    "score": "Оценка модели: {score}% (отмечается при {threshold}% и выше).",
    "score_unreliable": "Оценка модели: {score}%. Это не результат: запись не прошла проверки выше.",
    "heard": "Что услышала модель: {sounds}.",
    "sound_cough": "кашель",
    "sound_speech": "речь",
    "sound_breathing": "дыхание",
    "sound_other": "другой звук",
    "validation": "На записях, на которых модель проверялась (проверочный набор), при этом пороге:",
    "validation_source": "{channel}: отмечено {tp} из {positives} записей с COVID-19, не отмечено {tn} из {negatives} "
                         "записей без него.",
    "source_call-center": "телефон (колл-центр)",
    "source_telegram": "приложение (Telegram)",
    "source_pooled": "все",
    "details": "Звуковых событий: {events}, длительность записи {seconds} с · декодирование и анализ {ms} мс · "
               "модель {model}",
    "checks": "Проверки записи: пик-фактор громких фрагментов {crest} (перегрузка — ниже {min_crest}, если декодер "
              "видел отсчёты на пределе шкалы), сигнал/шум {snr} дБ (не ниже {min_snr} дБ), покашливаний {coughs}, "
              "общей длительностью {cough_seconds} с (не меньше {min_cough_seconds} с).",
    "decoder_notes": "Замечания декодера (на английском): {notes}.",
    "figure_alt": "Осциллограмма и спектрограмма записи {name} длительностью {seconds} с; звуковые события "
                  "({events}) выделены.",
    "figure_alt_coughs": "Из них покашливаний: {coughs}, с оценками от {low}% до {high}%.",
    "figure_waveform": "сигнал",
    "figure_bands": "полоса (0–4 кГц)",
    "figure_time": "время (с)",
    "figure_title_cough": "Звуковые события (выделены); оценка каждого покашливания",
    "figure_title_other": "Звуковые события (выделены) и на что они похожи",
    "figure_title_many": "Звуковых событий: {events} (выделены)",
    "report_download": "Скачать отчёт (HTML)",
    "report_title": "Результат coughkd",
    "report_analysed": "Проанализировано {time} (время браузера); отчёт создан {utc} UTC.",
    "report_model": "Модель {model}, создана {created}.",
    "report_prevalence": "Как часто результат верен в зависимости от распространённости COVID-19",
    "report_prevalence_columns": "Людей с COVID-19 из 100|Отмеченных, у кого он есть, из 100|Неотмеченных, у кого "
                                 "его нет, из 100",
    "history_score": "оценка {score}%",
}

ES = {
    "title": "coughkd — demostración de cribado de COVID-19 por la tos",
    "intro": "Grabe dos o tres toses, o suba una grabación (de 0,3 s a 10 minutos, hasta 50 MB), y pulse "
             "**Analizar**.",
    "disclaimer": "**Demostración de investigación: no es un producto sanitario ni un diagnóstico.** No se ha "
                  "validado clínicamente: su puntuación la da un modelo pequeño entrenado con unos cientos de "
                  "grabaciones aportadas por voluntarios, y se equivoca a menudo. No la use para decidir si tiene "
                  "COVID-19 ni qué hacer con su salud. Si se encuentra mal o cree que tiene COVID-19, hágase una "
                  "prueba y siga las indicaciones de su servicio de salud. Si le cuesta respirar, tiene dolor en el "
                  "pecho o se siente muy mal, busque atención médica de inmediato.",
    "privacy_local": "Su audio se analiza en el ordenador donde se ejecuta esta aplicación y no se envía a ningún "
                     "otro sitio. {kept}",
    "privacy_shared": "Esta aplicación se comparte mediante un enlace público de Gradio: su audio pasa por el "
                      "servidor intermediario de Gradio hasta el ordenador donde se ejecuta la aplicación, se "
                      "analiza allí y no se envía a ningún otro sitio. {kept}",
    "kept": "La aplicación guarda el archivo subido en una carpeta temporal propia, lo borra cuando tiene una hora "
            "(se comprueba cada hora, así que en menos de dos horas) y borra toda la carpeta al detenerse, o en el "
            "siguiente arranque si se la cerró a la fuerza; nada de lo que se extrae de su audio se guarda una vez "
            "mostrado el resultado. El informe se genera en su navegador, y sus resultados (texto, sin audio) se "
            "quedan en este navegador hasta que pulse Borrar historial.",
    "recording_label": "Grabación de la tos",
    "analyse": "Analizar",
    "prevalence_label": "¿Qué tan común es la COVID-19 a su alrededor ahora? (% de personas)",
    "prevalence_info": "Sirve para decir qué probabilidad tiene un resultado de ser correcto. Si no lo sabe, "
                       "déjelo en 5%.",
    "examples_label": "Grabaciones de ejemplo (CC0)",
    "placeholder": "Los resultados aparecerán aquí.",
    "history_heading": "Sus resultados en este navegador",
    "history_empty": "Los resultados que obtenga aquí se muestran uno al lado del otro, primero los más recientes.",
    "history_clear": "Borrar historial",
    "json_label": "Resultado de la API (JSON)",
    "ready": "Listo para analizar {name}. Pulse Analizar.",
    "result_for": "Resultado de {name} · {seconds} s · {time}",
    "microphone_recording": "su grabación del micrófono",
    "headline_positive": "Posible señal de COVID-19 en esta tos",
    "next_positive": "Qué hacer: hágase una prueba de COVID-19 (un autotest, o en una farmacia o centro de salud) y, "
                     "hasta saber el resultado, manténgase lejos de personas que podrían enfermar gravemente. Esta "
                     "aplicación no puede decirle que tiene COVID-19: se equivoca a menudo.",
    "headline_negative": "No se encontraron señales de COVID-19 en esta tos",
    "next_negative": "Qué hacer: esto no descarta la COVID-19. Si tiene síntomas o ha estado cerca de alguien con "
                     "COVID-19, hágase una prueba de todos modos.",
    "headline_retake": "Sin resultado: vuelva a grabar",
    "next_retake": "Vuelva a grabar y pulse Analizar.",
    "reason_clipped": "La grabación estaba demasiado alta: el sonido está distorsionado (saturado).",
    "tip_clipped": "Aleje el micrófono, más o menos a un brazo de distancia, y tosa como lo haría normalmente.",
    "reason_noisy": "Hay demasiado ruido de fondo: las toses apenas se distinguen de él.",
    "tip_noisy": "Vaya a un lugar tranquilo, apague ventiladores, música o televisión, y acerque el micrófono.",
    "reason_no_cough": "No se pudo distinguir ninguna tos en la grabación.",
    "tip_no_cough": "Tosa dos o tres veces, con una pausa breve entre toses y sin hablar.",
    "reason_short": "Las toses de la grabación son demasiado cortas para analizarlas.",
    "tip_short": "Grabe dos o tres toses completas.",
    "headline_speech": "Esto suena a voz, no a tos",
    "headline_breathing": "Esto suena a respiración, no a tos",
    "headline_other": "Esto no suena a tos",
    "next_not_cough": "El modelo solo da un resultado de COVID-19 para la tos. Grabe dos o tres toses cerca del "
                      "micrófono, con poco ruido de fondo.",
    "headline_error": "No se pudo analizar este audio",
    "no_audio": "No hay audio: grabe con el micrófono o suba un archivo, y pulse Analizar.",
    "busy": "Ahora mismo se está analizando otra grabación grande. Inténtelo de nuevo en un minuto, o suba una "
            "grabación más corta (los archivos de hasta {megabytes} MB nunca esperan).",
    "how_sure": "¿Qué tan seguro es?",
    "per_hundred": "De 100 personas con COVID-19 que graban así, unas {caught} son señaladas; de 100 personas sin "
                   "ella, unas {false_alarms} son señaladas.",
    "channel_app": "Estas cifras son de grabaciones hechas con una aplicación del móvil o un navegador (las "
                   "grabaciones de Telegram con las que se comprobó).",
    "channel_telephone": "Estas cifras son de grabaciones telefónicas, de 8 kHz o menos, como esta (las grabaciones "
                         "del centro de llamadas con las que se comprobó).",
    "channel_pooled": "Estas cifras son de todas las grabaciones con las que se comprobó: no tiene cifras propias "
                      "para este tipo de grabación.",
    "sample_size": "Provienen de solo {positives} grabaciones de personas con COVID-19 y {negatives} de personas "
                   "sin ella, así que son aproximadas: la primera cifra podría estar entre unas {low} y {high}.",
    "predictive": "Si {prevalence} de cada 100 personas a su alrededor tienen COVID-19 (ajústelo con el "
                  "deslizador), entonces de las personas señaladas unas {ppv} de cada 100 la tienen de verdad, y de "
                  "las no señaladas unas {npv} de cada 100 de verdad no la tienen.",
    "spread": "Sus {count} toses puntuaron entre {low}% y {high}% una por una; el resultado es de la grabación "
              "completa.",
    "spread_mixed": "Algunas toses puntuaron por encima del umbral y otras por debajo, así que este resultado es "
                    "menos seguro que uno en que coinciden.",
    "full_numbers": "Todas las cifras",
    "score": "Puntuación del modelo: {score}% (se señala a partir de {threshold}%).",
    "score_unreliable": "Puntuación del modelo: {score}%. No es un resultado: la grabación no pasó las "
                        "comprobaciones de arriba.",
    "heard": "Lo que oyó el modelo: {sounds}.",
    "sound_cough": "tos",
    "sound_speech": "voz",
    "sound_breathing": "respiración",
    "sound_other": "otro sonido",
    "validation": "En las grabaciones con las que se comprobó (su conjunto de validación), con este umbral:",
    "validation_source": "{channel}: {tp} de {positives} grabaciones con COVID-19 señaladas, {tn} de {negatives} sin "
                         "ella descartadas.",
    "source_call-center": "teléfono (centro de llamadas)",
    "source_telegram": "aplicación (Telegram)",
    "source_pooled": "todas",
    "details": "{events} eventos sonoros en {seconds} s de audio · decodificación e inferencia {ms} ms · modelo "
               "{model}",
    "checks": "Comprobaciones de la grabación: factor de cresta de los tramos fuertes {crest} (saturado por debajo "
              "de {min_crest} si el decodificador vio muestras a fondo de escala), relación señal/ruido {snr} dB "
              "(al menos {min_snr} dB), toses encontradas: {coughs}, que duran {cough_seconds} s en total (al menos "
              "{min_cough_seconds} s).",
    "decoder_notes": "Notas del decodificador (en inglés): {notes}.",
    "figure_alt": "Forma de onda y espectrograma de {name}, de {seconds} s, con {events} eventos sonoros "
                  "sombreados.",
    "figure_alt_coughs": "{coughs} de ellos son toses, con puntuaciones de {low}% a {high}%.",
    "figure_waveform": "forma de onda",
    "figure_bands": "banda (0–4 kHz)",
    "figure_time": "tiempo (s)",
    "figure_title_cough": "Eventos sonoros (sombreados); puntuación de cada tos",
    "figure_title_other": "Eventos sonoros (sombreados) y a qué suena cada uno",
    "figure_title_many": "{events} eventos sonoros (sombreados)",
    "report_download": "Descargar informe (HTML)",
    "report_title": "Resultado de coughkd",
    "report_analysed": "Analizado {time} (hora del navegador); informe generado {utc} UTC.",
    "report_model": "Modelo {model}, creado {created}.",
    "report_prevalence": "Con qué frecuencia acierta un resultado, según lo común que sea la COVID-19",
    "report_prevalence_columns": "Personas con COVID-19, de 100|Señaladas que la tienen, de 100|No señaladas que no "
                                 "la tienen, de 100",
    "history_score": "puntuación {score}%",
}

HI = {
    "title": "coughkd — खाँसी से COVID-19 जाँच का प्रदर्शन",
    "intro": "दो या तीन बार खाँसी रिकॉर्ड करें, या कोई रिकॉर्डिंग अपलोड करें (0.3 सेकंड से 10 मिनट, 50 MB तक), फिर "
             "**विश्लेषण करें** दबाएँ।",
    "disclaimer": "**शोध प्रदर्शन — यह कोई चिकित्सा उपकरण नहीं है और न ही निदान।** इसकी नैदानिक (क्लिनिकल) जाँच नहीं "
                  "हुई है: इसका स्कोर एक छोटे मॉडल से आता है जिसे स्वयंसेवकों से जुटाई गई कुछ सौ रिकॉर्डिंग पर "
                  "प्रशिक्षित किया गया है, और यह अक्सर गलत होता है। यह तय करने के लिए इसका उपयोग न करें कि आपको "
                  "COVID-19 है या नहीं, या अपने स्वास्थ्य के बारे में क्या करना है। यदि आप अस्वस्थ महसूस करते हैं या "
                  "आपको लगता है कि आपको COVID-19 है, तो जाँच करवाएँ और अपनी स्वास्थ्य सेवा की सलाह मानें। यदि आपको "
                  "साँस लेने में कठिनाई हो, सीने में दर्द हो या आप बहुत बीमार महसूस करें, तो तुरंत चिकित्सा सहायता लें।",
    "privacy_local": "आपकी ऑडियो का विश्लेषण उसी कंप्यूटर पर होता है जिस पर यह ऐप चल रहा है, और इसे कहीं और नहीं "
                     "भेजा जाता। {kept}",
    "privacy_shared": "यह ऐप Gradio के सार्वजनिक लिंक से साझा किया गया है: आपकी ऑडियो Gradio के रिले से होकर उस "
                      "कंप्यूटर तक जाती है जिस पर ऐप चल रहा है, वहीं उसका विश्लेषण होता है और उसे कहीं और नहीं भेजा "
                      "जाता। {kept}",
    "kept": "ऐप अपलोड की गई फ़ाइल को अपने अस्थायी फ़ोल्डर में रखता है, एक घंटा पुरानी होने पर उसे मिटा देता है (हर "
            "घंटे जाँच होती है, इसलिए दो घंटे के भीतर), और बंद होने पर पूरा फ़ोल्डर मिटा देता है, या ज़बरदस्ती बंद "
            "किए जाने पर अगली बार शुरू होते समय; परिणाम दिखाने के बाद आपकी ऑडियो से निकाली गई कोई चीज़ नहीं रखी "
            "जाती। रिपोर्ट आपके ब्राउज़र में बनती है, और आपके परिणाम (केवल पाठ, ऑडियो नहीं) इसी ब्राउज़र में रहते हैं "
            "जब तक आप इतिहास मिटाएँ नहीं दबाते।",
    "recording_label": "खाँसी की रिकॉर्डिंग",
    "analyse": "विश्लेषण करें",
    "prevalence_label": "इस समय आपके आस-पास COVID-19 कितना आम है? (लोगों का %)",
    "prevalence_info": "इससे बताया जाता है कि परिणाम के सही होने की कितनी संभावना है। अगर आप नहीं जानते, तो इसे 5% "
                       "पर छोड़ दें।",
    "examples_label": "उदाहरण रिकॉर्डिंग (CC0)",
    "placeholder": "परिणाम यहाँ दिखेंगे।",
    "history_heading": "इस ब्राउज़र में आपके परिणाम",
    "history_empty": "यहाँ मिले परिणाम साथ-साथ दिखाए जाते हैं, सबसे नया पहले।",
    "history_clear": "इतिहास मिटाएँ",
    "json_label": "API परिणाम (JSON)",
    "ready": "{name} का विश्लेषण करने के लिए तैयार। विश्लेषण करें दबाएँ।",
    "result_for": "{name} का परिणाम · {seconds} सेकंड · {time}",
    "microphone_recording": "आपकी माइक्रोफ़ोन रिकॉर्डिंग",
    "headline_positive": "इस खाँसी में COVID-19 का संभावित संकेत",
    "next_positive": "क्या करें: COVID-19 की जाँच करवाएँ (घर पर सेल्फ़-टेस्ट, या फ़ार्मेसी या क्लिनिक में), और जब तक "
                     "परिणाम न आए, उन लोगों से दूर रहें जो गंभीर रूप से बीमार हो सकते हैं। यह ऐप आपको यह नहीं बता "
                     "सकता कि आपको COVID-19 है: यह अक्सर गलत होता है।",
    "headline_negative": "इस खाँसी में COVID-19 का कोई संकेत नहीं मिला",
    "next_negative": "क्या करें: इससे COVID-19 की संभावना खत्म नहीं होती। यदि आपमें लक्षण हैं या आप COVID-19 वाले किसी "
                     "व्यक्ति के पास रहे हैं, तो फिर भी जाँच करवाएँ।",
    "headline_retake": "कोई परिणाम नहीं: कृपया फिर से रिकॉर्ड करें",
    "next_retake": "फिर से रिकॉर्ड करें, फिर विश्लेषण करें दबाएँ।",
    "reason_clipped": "रिकॉर्डिंग बहुत तेज़ थी: आवाज़ विकृत (क्लिप) हो गई है।",
    "tip_clipped": "माइक्रोफ़ोन को दूर रखें, लगभग एक हाथ की दूरी पर, और सामान्य रूप से खाँसें।",
    "reason_noisy": "पीछे का शोर बहुत ज़्यादा है: खाँसी उससे मुश्किल से अलग सुनाई देती है।",
    "tip_noisy": "किसी शांत जगह पर जाएँ, पंखा, संगीत या टीवी बंद करें, और माइक्रोफ़ोन पास रखें।",
    "reason_no_cough": "रिकॉर्डिंग में एक भी अलग खाँसी पहचानी नहीं जा सकी।",
    "tip_no_cough": "दो या तीन बार खाँसें, हर खाँसी के बीच थोड़ा रुकें और बात न करें।",
    "reason_short": "रिकॉर्डिंग में खाँसी विश्लेषण के लिए बहुत छोटी है।",
    "tip_short": "दो या तीन पूरी खाँसी रिकॉर्ड करें।",
    "headline_speech": "यह खाँसी नहीं, बोलने जैसी आवाज़ है",
    "headline_breathing": "यह खाँसी नहीं, साँस लेने जैसी आवाज़ है",
    "headline_other": "यह खाँसी जैसी आवाज़ नहीं है",
    "next_not_cough": "मॉडल केवल खाँसी के लिए COVID-19 का परिणाम देता है। माइक्रोफ़ोन के पास, कम शोर में, दो या तीन "
                      "बार खाँसी रिकॉर्ड करें।",
    "headline_error": "इस ऑडियो का विश्लेषण नहीं हो सका",
    "no_audio": "कोई ऑडियो नहीं: माइक्रोफ़ोन से रिकॉर्ड करें या फ़ाइल अपलोड करें, फिर विश्लेषण करें दबाएँ।",
    "busy": "अभी एक और बड़ी रिकॉर्डिंग का विश्लेषण हो रहा है। एक मिनट बाद फिर कोशिश करें, या छोटी रिकॉर्डिंग अपलोड "
            "करें ({megabytes} MB तक की फ़ाइलों को कभी इंतज़ार नहीं करना पड़ता)।",
    "how_sure": "यह कितना भरोसेमंद है?",
    "per_hundred": "COVID-19 वाले 100 लोगों में से, जो इसी तरह रिकॉर्ड करते हैं, लगभग {caught} चिह्नित होते हैं; बिना "
                   "COVID-19 वाले 100 लोगों में से लगभग {false_alarms} चिह्नित होते हैं।",
    "channel_app": "ये आँकड़े फ़ोन ऐप या ब्राउज़र से बनी रिकॉर्डिंग के हैं (वे Telegram रिकॉर्डिंग जिन पर इसकी जाँच "
                   "हुई)।",
    "channel_telephone": "ये आँकड़े इसी तरह की 8 kHz या कम की टेलीफ़ोन रिकॉर्डिंग के हैं (वे कॉल-सेंटर रिकॉर्डिंग जिन "
                         "पर इसकी जाँच हुई)।",
    "channel_pooled": "ये आँकड़े उन सभी रिकॉर्डिंग के हैं जिन पर इसकी जाँच हुई: इस तरह की रिकॉर्डिंग के लिए अलग "
                      "आँकड़े नहीं हैं।",
    "sample_size": "ये केवल COVID-19 वाले लोगों की {positives} और बिना COVID-19 वाले लोगों की {negatives} रिकॉर्डिंग "
                   "से आए हैं, इसलिए ये मोटे अनुमान हैं: पहली संख्या लगभग {low} से {high} के बीच कहीं भी हो सकती है।",
    "predictive": "अगर आपके आस-पास 100 में से {prevalence} लोगों को COVID-19 है (स्लाइडर से बदलें), तो चिह्नित लोगों "
                  "में से लगभग 100 में {ppv} को सचमुच COVID-19 होता है, और जो चिह्नित नहीं हुए उनमें से लगभग 100 में "
                  "{npv} को सचमुच नहीं होता।",
    "spread": "आपकी {count} खाँसियों को अलग-अलग {low}% से {high}% तक स्कोर मिला; परिणाम पूरी रिकॉर्डिंग का है।",
    "spread_mixed": "कुछ खाँसियों का स्कोर सीमा से ऊपर और कुछ का नीचे था, इसलिए यह परिणाम उस परिणाम से कम निश्चित है "
                    "जिसमें सभी एक जैसे हों।",
    "full_numbers": "सभी आँकड़े",
    "score": "मॉडल स्कोर: {score}% ({threshold}% या अधिक पर चिह्नित)।",
    "score_unreliable": "मॉडल स्कोर: {score}%। यह परिणाम नहीं है: रिकॉर्डिंग ऊपर की जाँचों में विफल रही।",
    "heard": "मॉडल ने क्या सुना: {sounds}।",
    "sound_cough": "खाँसी",
    "sound_speech": "बोलना",
    "sound_breathing": "साँस",
    "sound_other": "अन्य आवाज़",
    "validation": "जिन रिकॉर्डिंग पर इसकी जाँच हुई (इसका सत्यापन सेट), उन पर, इसी सीमा पर:",
    "validation_source": "{channel}: COVID-19 वाली {positives} में से {tp} रिकॉर्डिंग चिह्नित, बिना COVID-19 वाली "
                         "{negatives} में से {tn} साफ़।",
    "source_call-center": "टेलीफ़ोन (कॉल सेंटर)",
    "source_telegram": "ऐप (Telegram)",
    "source_pooled": "सभी",
    "details": "{seconds} सेकंड की ऑडियो में {events} ध्वनि घटनाएँ · डिकोडिंग और विश्लेषण {ms} ms · मॉडल {model}",
    "checks": "रिकॉर्डिंग की जाँच: तेज़ हिस्सों का क्रेस्ट फ़ैक्टर {crest} (डिकोडर को पूरे स्केल वाले सैंपल मिलने पर "
              "{min_crest} से कम होने पर क्लिप), सिग्नल-से-शोर {snr} dB (कम से कम {min_snr} dB), {coughs} खाँसी, कुल "
              "{cough_seconds} सेकंड (कम से कम {min_cough_seconds} सेकंड)।",
    "decoder_notes": "डिकोडर की टिप्पणियाँ (अंग्रेज़ी में): {notes}।",
    "figure_alt": "{name} का वेवफ़ॉर्म और स्पेक्ट्रोग्राम, {seconds} सेकंड लंबा, {events} ध्वनि घटनाएँ छायांकित।",
    "figure_alt_coughs": "इनमें से {coughs} खाँसी हैं, जिनका स्कोर {low}% से {high}% है।",
    "figure_waveform": "वेवफ़ॉर्म",
    "figure_bands": "बैंड (0–4 kHz)",
    "figure_time": "समय (सेकंड)",
    "figure_title_cough": "ध्वनि घटनाएँ (छायांकित); हर खाँसी का स्कोर",
    "figure_title_other": "ध्वनि घटनाएँ (छायांकित) और हर एक किस तरह की आवाज़ है",
    "figure_title_many": "{events} ध्वनि घटनाएँ (छायांकित)",
    "report_download": "रिपोर्ट डाउनलोड करें (HTML)",
    "report_title": "coughkd परिणाम",
    "report_analysed": "विश्लेषण {time} (ब्राउज़र का समय); रिपोर्ट {utc} UTC पर बनी।",
    "report_model": "मॉडल {model}, बनाया गया {created}।",
    "report_prevalence": "COVID-19 कितना आम है, इसके अनुसार परिणाम कितनी बार सही होता है",
    "report_prevalence_columns": "100 में COVID-19 वाले लोग|चिह्नित जिन्हें यह है, 100 में|चिह्नित नहीं जिन्हें यह "
                                 "नहीं है, 100 में",
    "history_score": "स्कोर {score}%",
}

TEXT = {"en": EN, "ru": RU, "es": ES, "hi": HI}
PAGE_KEYS = ("title", "intro", "recording_label", "analyse", "prevalence_label", "prevalence_info", "examples_label",
             "history_clear", "json_label")


def language(tag: str | None) -> str:
    """One of LANGUAGES for a BCP 47 tag as the browser gives it ("ru-RU" -> "ru"); English for any other."""
    primary = (tag or "").strip().lower().replace("_", "-").split("-")[0]
    return primary if primary in TEXT else "en"


def say(lang: str, key: str, **values: object) -> str:
    """The text `key` in `lang` (English where a language lacks it), its placeholders filled."""
    template = TEXT.get(lang, EN).get(key, EN[key])
    return template.format(**values) if values else template


def decimal(lang: str, value: float, digits: int = 1) -> str:
    """A number as people of `lang` write it, without a trailing zero ("5.0" -> "5"; Russian "0,5")."""
    written = f"{round(value, digits):g}"
    return written.replace(".", ",") if lang in DECIMAL_COMMA else written


def page_text(lang: str) -> dict[str, str]:
    """The page's fixed text in `lang`, for gr.I18n: complete strings (its translations take no placeholders, and
    braces would be read as ICU message syntax)."""
    out = {key: say(lang, key) for key in PAGE_KEYS}
    kept = say(lang, "kept")
    return out | {
        "heading": "# " + say(lang, "title"),
        "history_heading": "## " + say(lang, "history_heading"),
        "notice_local": say(lang, "disclaimer") + "\n\n" + say(lang, "privacy_local", kept=kept),
        "notice_shared": say(lang, "disclaimer") + "\n\n" + say(lang, "privacy_shared", kept=kept),
    }


def placeholders(template: str) -> set[str]:
    """The names a template's `{...}` fields use."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}
