"""The reminders' own settings (read from the environment when the app starts; see docs/settings.md)."""
from finepay.settings import Setting, env_int

SETTINGS = (
    Setting("NOTICE_SENDER", "outbox"),  # the finepay.notifiers sender that runs: outbox or tencent
    Setting("NOTICE_QUIET_HOURS", "22:00-08:00"),  # in BUSINESS_TIMEZONE; held until they end ("" for none)
    Setting("NOTICE_DAILY_CAP", 3, env_int),  # reminders per number per business day
    Setting("NOTICE_REMINDER_DAYS", 3, env_int),  # the reminder goes this many days before the late fee starts
    Setting("NOTICE_MAX_ATTEMPTS", 8, env_int),  # tries of one message before staff must look
    Setting("NOTICE_RETRY_SECONDS", 300, env_int),  # the first retry's wait; each next one waits twice as long
    Setting("NOTICE_CLAIM_TIMEOUT_SECONDS", 300, env_int),  # a send claimed longer ago than this died mid-send
    Setting("NOTICE_UNKNOWN_RECHECK_MINUTES", 30, env_int),  # after this, a text the sender has no record of is re-sent
    Setting("NOTICE_CODE_MINUTES", 10, env_int),  # how long a one-time code is good for
    Setting("NOTICE_CODE_ATTEMPTS", 5, env_int),  # wrong codes before it is void
    Setting("NOTICE_CODE_RATE_LIMIT", "5/hour"),  # codes sent to one number
)
