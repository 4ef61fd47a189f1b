-- Users follow their identity provider: the display name it gives and the
-- time of the last login through it (email and groups are updated in place).
ALTER TABLE users ADD COLUMN display_name TEXT;
ALTER TABLE users ADD COLUMN last_login_at BIGINT;

-- Key-value entries may expire (console sessions, logins under way); the
-- purge deletes them once past. NULL: never.
ALTER TABLE kv ADD COLUMN expires_at BIGINT;
CREATE INDEX kv_expires_at ON kv (expires_at) WHERE expires_at IS NOT NULL;

-- Console sessions and logins stored before entries could expire: give
-- them a bound (30 days; each session also checks its own deadline), so
-- the purge deletes them eventually.
UPDATE kv SET expires_at = (extract(epoch FROM now()) * 1000)::bigint + 2592000000
 WHERE namespace IN ('console.sessions', 'console.logins') AND expires_at IS NULL;

-- The groups and name of each person's latest login were kept beside the
-- users table (key-value namespace `identity.profiles`, always JSON written
-- by the gateway); they move into it. (CASE keeps the cast away from other
-- namespaces, whose values need not be JSON, whatever order the planner
-- picks.)
UPDATE users u
   SET groups = ARRAY(SELECT jsonb_array_elements_text(p.doc -> 'groups')),
       display_name = p.doc ->> 'display_name'
  FROM (SELECT key, CASE WHEN namespace = 'identity.profiles' THEN value::jsonb END AS doc
          FROM kv WHERE namespace = 'identity.profiles') p
 WHERE p.key = u.name AND jsonb_typeof(p.doc -> 'groups') = 'array';
DELETE FROM kv WHERE namespace = 'identity.profiles';
