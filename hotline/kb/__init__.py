"""The shared knowledge base (知识库, 共建共享).

PostgreSQL holds the articles, their history, flags and the change log
(:mod:`hotline.kb.store`); each node keeps a derived whoosh index with jieba
segmentation (:mod:`hotline.kb.index`) that follows the change log
(:mod:`hotline.kb.engine`); :mod:`hotline.kb.suggest` is the call flow's and the
screen-pop's entry point; :mod:`hotline.kb.importer` loads Markdown, CSV and XLSX.
"""
