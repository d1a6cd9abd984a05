"""Records: the mail archive, retention schedules, legal holds and public-records requests (issue 6).

    ingest.py     store once (content-addressed, deduplicated), parse, index, classify: journal hook and imports
    sources.py    mbox, Maildir and .eml found in files and folders; extract.py what is kept and indexed
    archive.py    records: read (hash-verified), find, verify, remove; keys.py date-ordered ids
    blobs.py      the original bytes, stored once and hash-verified on every read; disposition, compaction
    segments.py   append-only segment files under $CIVICAUP_HOME/archive/segments/ that hold them
    search.py     full-text (stemmed) and metadata search, newest first, SQLite FTS5 or PostgreSQL tsvector
    schedules.py  retention schedules per state (schedules/<state>.yaml) and assignment rules
    retention.py  what is due; disposition with a certificate in the audit log
    holds.py      legal holds by custodian, dates and query; release only by the clerk or city administrator
    requests.py   public-records requests, responsive records, manual redactions
    deadlines.py  statutory response deadlines; holidays.py the states' holidays
    redact.py     the produced (redacted) copy; export.py the production zip; authz.py who may do what
"""
