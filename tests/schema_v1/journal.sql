CREATE TABLE IF NOT EXISTS journal_entries (
    seq            {int} PRIMARY KEY,
    at             TEXT NOT NULL,
    event          TEXT NOT NULL,
    direction      TEXT NOT NULL,
    message_id     TEXT,
    message_type   TEXT,
    peer           TEXT,
    purpose        TEXT,
    case_reference TEXT,
    correlation_id TEXT,
    person_tag     TEXT,
    outcome        TEXT,
    code           TEXT,
    content        {blob},
    content_digest TEXT,
    retain_until   TEXT,
    prev_hash      TEXT NOT NULL,
    entry_hash     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS journal_entries_person ON journal_entries (person_tag);
CREATE INDEX IF NOT EXISTS journal_entries_message ON journal_entries (message_id);
CREATE TABLE IF NOT EXISTS journal_keys (
    seq          {int} PRIMARY KEY,
    wrapped      {blob} NOT NULL,
    retain_until TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS journal_keys_retention ON journal_keys (retain_until);
CREATE TABLE IF NOT EXISTS journal_head (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    seq        {int} NOT NULL,
    entry_hash TEXT NOT NULL,
    seal       TEXT NOT NULL
);
