CREATE TABLE IF NOT EXISTS outbox (
    message_id     TEXT PRIMARY KEY,
    type           TEXT NOT NULL,
    recipient      TEXT NOT NULL,
    purpose        TEXT NOT NULL,
    case_reference TEXT NOT NULL,
    correlation_id TEXT,
    envelope       {blob} NOT NULL,
    created_at     TEXT NOT NULL,
    expires_at     TEXT,
    confirmed_at   TEXT,
    outcome        TEXT,
    outcome_code   TEXT,
    outcome_at     TEXT
);
CREATE INDEX IF NOT EXISTS outbox_unconfirmed ON outbox (confirmed_at);
CREATE TABLE IF NOT EXISTS inbox (
    message_id      TEXT PRIMARY KEY,
    type            TEXT NOT NULL,
    sender          TEXT NOT NULL,
    outcome         TEXT NOT NULL,
    outcome_code    TEXT,
    local_reference TEXT,
    reply           {blob},
    received_at     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS attempts (
    message_id TEXT PRIMARY KEY,
    failures   INTEGER NOT NULL,
    last_code  TEXT,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS held_requests (
    message_id     TEXT PRIMARY KEY,
    sender         TEXT NOT NULL,
    purpose        TEXT NOT NULL,
    case_reference TEXT NOT NULL,
    envelope       {blob} NOT NULL,
    received_at    TEXT NOT NULL,
    expires_at     TEXT NOT NULL,
    state          TEXT NOT NULL,
    decided_at     TEXT
);
