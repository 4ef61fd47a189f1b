-- A small key-value area for components that keep a little durable state
-- of their own: delivery cursors, chat message references, shared settings.
CREATE TABLE kv (
    namespace   TEXT NOT NULL,
    key         TEXT NOT NULL,
    value       TEXT NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (namespace, key)
) STRICT;
