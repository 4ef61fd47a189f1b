-- Users follow their identity provider: the display name it gives and the
-- time of the last login through it (email and groups are updated in place).
ALTER TABLE users ADD COLUMN display_name TEXT;
ALTER TABLE users ADD COLUMN last_login_at BIGINT;

-- Key-value entries may expire (console sessions, logins under way); the
-- purge deletes them once past. NULL: never.
ALTER TABLE kv ADD COLUMN expires_at BIGINT;
CREATE INDEX kv_expires_at ON kv (expires_at) WHERE expires_at IS NOT NULL;
