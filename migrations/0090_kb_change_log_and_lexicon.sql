-- The knowledge base on the shared change stream, and its colloquial lexicon.
--
-- 1. Article changes go to `change_log` (entity 'kb_article', the feed's stream),
--    written in the same transaction as the change. Readers take rows in (txid, id)
--    order below the oldest running transaction, so no global advisory lock is needed
--    to keep a node's cursor from skipping a late commit: `kb_changes` and the lock
--    that serialised every KB write are gone. change_log.entity_id is a bigint, so
--    articles get a numeric key (`num`); the row's data carries the text id.
-- 2. `kb_lexicon`: dictionary words, stop words, synonym groups and colloquial
--    phrases that knowledge editors add from the console, reviewed like articles
--    (draft → review → published; archived to withdraw). Published entries are
--    merged with the seed files on every node (entity 'kb_lexicon' in change_log).
--    The editable synonym groups of `kb_synonyms` move here, published.

ALTER TABLE kb_articles ADD COLUMN num bigint GENERATED ALWAYS AS IDENTITY;
CREATE UNIQUE INDEX kb_articles_num_idx ON kb_articles (num);

CREATE TABLE kb_lexicon (
    id            bigserial PRIMARY KEY,
    kind          text NOT NULL CHECK (kind IN ('word', 'stopword', 'synonym', 'phrase')),
    -- word / stopword: one word; synonym: the group; phrase: the ways of saying it
    terms         text[] NOT NULL CHECK (cardinality(terms) BETWEEN 1 AND 20),
    -- phrase: the words the articles use
    means         text[] NOT NULL DEFAULT '{}',
    note          text,
    state         text NOT NULL DEFAULT 'draft' CHECK (state IN ('draft', 'review', 'published', 'archived')),
    version       integer NOT NULL DEFAULT 1,
    created_by    bigint REFERENCES users (id),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_by    bigint REFERENCES users (id),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    published_by  bigint REFERENCES users (id),
    published_at  timestamptz,
    CHECK (kind <> 'phrase' OR cardinality(means) BETWEEN 1 AND 10),
    CHECK (kind NOT IN ('word', 'stopword') OR cardinality(terms) = 1),
    CHECK (kind <> 'synonym' OR cardinality(terms) >= 2)
);
CREATE INDEX kb_lexicon_state_idx ON kb_lexicon (state, kind);

CREATE TABLE kb_lexicon_history (
    id          bigserial PRIMARY KEY,
    entry_id    bigint NOT NULL REFERENCES kb_lexicon (id) ON DELETE CASCADE,
    action      text NOT NULL,
    state_from  text,
    state_to    text,
    snapshot    jsonb,
    note        text,
    actor_id    bigint REFERENCES users (id),
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX kb_lexicon_history_entry_idx ON kb_lexicon_history (entry_id, id);

INSERT INTO kb_lexicon (kind, terms, state, created_by, updated_by, updated_at, published_by, published_at)
SELECT 'synonym', terms, 'published', updated_by, updated_by, updated_at, updated_by, updated_at
  FROM kb_synonyms ORDER BY id;

DROP TABLE kb_synonyms;
DROP TABLE kb_changes;
