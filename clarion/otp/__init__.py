"""One-time passwords: SendOTPMessage and VerifyOTPMessage (docs/messages.md#one-time-passwords)."""
