"""The shared knowledge base (知识库, 共建共享), split by concern:

* :mod:`~hotline.kb.articles` — articles in PostgreSQL (the source of truth): content,
  the review workflow, history; :mod:`~hotline.kb.flags` — agents' flags;
  :mod:`~hotline.kb.reviewers` — knowledge administrators and their worklist;
  :mod:`~hotline.kb.access` — who may edit and review; :mod:`~hotline.kb.present` — JSON.
* :mod:`~hotline.kb.changes` — KB changes on the shared ``change_log`` stream.
* :mod:`~hotline.kb.lexicon` — the colloquial layer as data (dictionary, stop words,
  synonym groups, colloquial phrases); :mod:`~hotline.kb.lexicon_entries` — the
  entries editors keep from the console, reviewed like articles.
* :mod:`~hotline.kb.index` — each node's derived whoosh index; :mod:`~hotline.kb.query`
  — planning and ranking; :mod:`~hotline.kb.engine` — keeps the index in step with the
  change log and answers searches; :mod:`~hotline.kb.suggest` — the call flow's and the
  screen-pop's entry point; :mod:`~hotline.kb.importer` — Markdown, CSV and XLSX.
"""
