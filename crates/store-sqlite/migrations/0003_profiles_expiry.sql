-- Users follow their identity provider: the display name it gives and the
-- time of the last login through it (email and groups are updated in place).
ALTER TABLE users ADD COLUMN display_name TEXT;
ALTER TABLE users ADD COLUMN last_login_at INTEGER;

-- Key-value entries may expire (console sessions, logins under way); the
-- purge deletes them once past. NULL: never.
ALTER TABLE kv ADD COLUMN expires_at INTEGER;
CREATE INDEX kv_expires_at ON kv (expires_at) WHERE expires_at IS NOT NULL;

-- Console sessions and logins stored before entries could expire: give
-- them a bound (30 days; each session also checks its own deadline), so
-- the purge deletes them eventually.
UPDATE kv SET expires_at = CAST(strftime('%s', 'now') AS INTEGER) * 1000 + 2592000000
 WHERE namespace IN ('console.sessions', 'console.logins') AND expires_at IS NULL;

-- The groups and name of each person's latest login were kept beside the
-- users table (key-value namespace `identity.profiles`); they move into it.
-- (CASE keeps json_* away from anything that is not JSON.)
UPDATE users
   SET groups = (SELECT json_extract(CASE WHEN json_valid(kv.value) THEN kv.value END, '$.groups') FROM kv
                  WHERE kv.namespace = 'identity.profiles' AND kv.key = users.name),
       display_name = (SELECT json_extract(CASE WHEN json_valid(kv.value) THEN kv.value END, '$.display_name') FROM kv
                        WHERE kv.namespace = 'identity.profiles' AND kv.key = users.name)
 WHERE EXISTS (SELECT 1 FROM kv
                WHERE kv.namespace = 'identity.profiles' AND kv.key = users.name
                  AND json_type(CASE WHEN json_valid(kv.value) THEN kv.value END, '$.groups') = 'array');
DELETE FROM kv WHERE namespace = 'identity.profiles';
