"""The fixed text of an OTP message, per Language SendOTPMessage accepts.

Pinpoint's developer guide ("Generate one-time passwords") gives the English text only: "This is your One Time
Password: {{otp}} from {{brand}}". The texts it sent in the other twelve languages are not published; the ones
below are Clarion's translations of that sentence, and an operator who needs other wording sets `otp.texts`
(docs/configuration.md). `{code}` and `{brand}` mark where the code and the BrandName go.
"""

from __future__ import annotations

ENGLISH = "This is your One Time Password: {code} from {brand}"

TEXTS = {
    "en-US": ENGLISH,
    "en-GB": ENGLISH,
    "de-DE": "Dies ist Ihr Einmalpasswort: {code} von {brand}",
    "es-419": "Esta es tu contraseña de un solo uso: {code} de {brand}",
    "es-ES": "Esta es tu contraseña de un solo uso: {code} de {brand}",
    "fr-CA": "Voici votre mot de passe à usage unique : {code} de {brand}",
    "fr-FR": "Voici votre mot de passe à usage unique : {code} de {brand}",
    "it-IT": "Questa è la tua password monouso: {code} da {brand}",
    "ja-JP": "{brand} のワンタイムパスワード: {code}",
    "ko-KR": "{brand} 일회용 비밀번호: {code}",
    "pt-BR": "Esta é a sua senha de uso único: {code} de {brand}",
    "zh-CN": "这是您来自 {brand} 的一次性密码：{code}",
    "zh-TW": "這是您來自 {brand} 的一次性密碼：{code}",
}
LANGUAGES = tuple(TEXTS)
DEFAULT_LANGUAGE = "en-US"
