"""Reminders: pure planning rules (``policy``), message texts (``messages``), the
dispatcher that drains the outbox (``dispatcher``) and the APScheduler trigger
(``runner``, the only apscheduler importer)."""
