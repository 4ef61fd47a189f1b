-- The first schema: identities, credentials, requests and the audit chain.
-- Timestamps are milliseconds since the Unix epoch (UTC).

CREATE TABLE users (
    name        TEXT PRIMARY KEY NOT NULL,
    email       TEXT NOT NULL,
    -- PersonKey of the email (trimmed, lower-cased): one person, many identities.
    email_key   TEXT NOT NULL,
    groups      TEXT NOT NULL,              -- JSON array of strings
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
) STRICT;

CREATE INDEX users_email_key ON users (email_key);

CREATE TABLE agents (
    name        TEXT PRIMARY KEY NOT NULL,
    owner       TEXT,
    groups      TEXT NOT NULL,              -- JSON array of strings
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
) STRICT;

-- Only SHA-256 hashes of tokens are kept. Revoking an identity deletes its
-- rows here, so a lookup never has to consult revoked_at to refuse a token.
CREATE TABLE credentials (
    token_hash      TEXT PRIMARY KEY NOT NULL,
    principal_kind  TEXT NOT NULL CHECK (principal_kind IN ('user', 'agent')),
    principal_name  TEXT NOT NULL,
    created_at      INTEGER NOT NULL
) STRICT;

CREATE INDEX credentials_principal ON credentials (principal_kind, principal_name);

-- The indexed columns are copies of fields of `body` (the whole request as
-- JSON), kept for filtering; `body` is the truth, so new request fields need
-- no migration.
CREATE TABLE requests (
    id              TEXT PRIMARY KEY NOT NULL,
    status          TEXT NOT NULL,
    principal_kind  TEXT NOT NULL,
    principal_name  TEXT NOT NULL,
    kind            TEXT NOT NULL,
    resource        TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    -- expires_at while pending, release_by while approved, NULL otherwise.
    deadline        INTEGER,
    body            TEXT NOT NULL
) STRICT;

CREATE INDEX requests_created ON requests (created_at DESC, id DESC);
CREATE INDEX requests_status ON requests (status, created_at DESC, id DESC);
CREATE INDEX requests_principal ON requests (principal_kind, principal_name, created_at DESC, id DESC);
CREATE INDEX requests_kind ON requests (kind, created_at DESC, id DESC);
CREATE INDEX requests_resource ON requests (resource, created_at DESC, id DESC);
CREATE INDEX requests_deadline ON requests (deadline) WHERE deadline IS NOT NULL;

-- The hash chain. `body` is the canonical (JCS) JSON text that was hashed.
CREATE TABLE audit (
    seq        INTEGER PRIMARY KEY NOT NULL,
    time       INTEGER NOT NULL,
    actor      TEXT NOT NULL,
    type       TEXT NOT NULL,
    body       TEXT NOT NULL,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL
) STRICT;
