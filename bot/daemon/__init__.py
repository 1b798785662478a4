"""The daemon: supervisor, one worker thread per funded account, status, demo."""
