-- Shared knowledge base (知识库, 共建共享): articles with their owner unit, lifecycle
-- state, validity and review dates; every change in a history table; agents' flags;
-- named reviewers per unit; editable synonyms; and a change log whose sequence is the
-- cursor every node's search index follows (the index itself is derived).

CREATE TABLE kb_articles (
    id             text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
    title          text NOT NULL CHECK (char_length(btrim(title)) BETWEEN 1 AND 128),
    category       text NOT NULL CHECK (char_length(category) BETWEEN 1 AND 256),
    unit_code      text NOT NULL REFERENCES units (code),   -- owner / issuing unit
    material_type  text NOT NULL CHECK (material_type IN
                       ('办事指南', '法律法规', '热点问答', '日常咨询', '通知公告', '业务指引')),
    hotlines       text[] NOT NULL DEFAULT '{}',
    keywords       text[] NOT NULL DEFAULT '{}',
    body           text NOT NULL,
    valid_from     date NOT NULL DEFAULT current_date,
    valid_to       date,
    review_due     date,
    state          text NOT NULL DEFAULT 'draft'
                   CHECK (state IN ('draft', 'review', 'published', 'expired', 'archived')),
    version        integer NOT NULL DEFAULT 1,
    -- a pending revision of a published article (the live text stays visible meanwhile)
    revision       jsonb,
    revision_state text CHECK (revision_state IN ('draft', 'review')),
    revision_by    bigint REFERENCES users (id),
    source         text NOT NULL DEFAULT 'console',          -- console | import
    views          bigint NOT NULL DEFAULT 0,
    created_by     bigint REFERENCES users (id),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_by     bigint REFERENCES users (id),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    published_by   bigint REFERENCES users (id),
    published_at   timestamptz,
    CHECK (valid_to IS NULL OR valid_to >= valid_from),
    CHECK ((revision IS NULL) = (revision_state IS NULL))
);
CREATE UNIQUE INDEX kb_articles_title_idx ON kb_articles (title);
CREATE INDEX kb_articles_unit_state_idx ON kb_articles (unit_code, state);
CREATE INDEX kb_articles_review_due_idx ON kb_articles (review_due) WHERE state IN ('published', 'expired');
CREATE INDEX kb_articles_hotlines_idx ON kb_articles USING gin (hotlines);

-- Who changed what: one row per action; ``snapshot`` holds the content whenever it changed.
CREATE TABLE kb_article_history (
    id             bigserial PRIMARY KEY,
    article_id     text NOT NULL REFERENCES kb_articles (id) ON DELETE CASCADE,
    version        integer NOT NULL,
    action         text NOT NULL,     -- create | edit | import | submit | publish | reject | expire | archive | restore | revise
    state_from     text,
    state_to       text,
    changed_fields text[] NOT NULL DEFAULT '{}',
    snapshot       jsonb,
    note           text,
    actor_id       bigint REFERENCES users (id),
    actor_name     text,
    at             timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX kb_article_history_article_idx ON kb_article_history (article_id, id);

-- "Outdated" flags raised by agents from a call; they land with the owner unit.
CREATE TABLE kb_flags (
    id           bigserial PRIMARY KEY,
    article_id   text NOT NULL REFERENCES kb_articles (id) ON DELETE CASCADE,
    unit_code    text NOT NULL REFERENCES units (code),
    call_id      bigint REFERENCES calls (id),
    reason       text NOT NULL CHECK (char_length(reason) BETWEEN 1 AND 2000),
    state        text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'resolved', 'dismissed')),
    raised_by    bigint REFERENCES users (id),
    raised_at    timestamptz NOT NULL DEFAULT now(),
    resolved_by  bigint REFERENCES users (id),
    resolved_at  timestamptz,
    resolution   text
);
CREATE INDEX kb_flags_unit_open_idx ON kb_flags (unit_code) WHERE state = 'open';
CREATE INDEX kb_flags_article_idx ON kb_flags (article_id);

-- Knowledge administrators: users who may review/publish a unit's articles (NULL unit:
-- every unit). Supervisors and admins are reviewers for every unit without a row here.
CREATE TABLE kb_reviewers (
    user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    unit_code  text REFERENCES units (code),
    granted_by bigint REFERENCES users (id),
    granted_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX kb_reviewers_uq ON kb_reviewers (user_id, coalesce(unit_code, ''));

-- Synonym groups edited from the console (added to config/kb_synonyms.yaml at query time).
CREATE TABLE kb_synonyms (
    id         bigserial PRIMARY KEY,
    terms      text[] NOT NULL CHECK (cardinality(terms) BETWEEN 2 AND 20),
    updated_by bigint REFERENCES users (id),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- The change log: writers take an advisory transaction lock before appending, so
-- sequence order equals commit order and a node's cursor never skips a change.
CREATE TABLE kb_changes (
    seq        bigserial PRIMARY KEY,
    kind       text NOT NULL CHECK (kind IN ('article', 'synonyms')),
    article_id text,
    at         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE kb_meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);
INSERT INTO kb_meta (key, value) VALUES ('instance', gen_random_uuid()::text);
