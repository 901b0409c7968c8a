"""The law as data: Article 380-3 of the Criminal Code of Kazakhstan.

`article_380_3.json` is the single source of the legal rules. The API loads
it (`service.py`) and serves it unchanged at /api/v1/law/rules so the PWA can
classify offline with `pwa/js/law.js`; both implement the same rules from the
same document, and the server's classification is the authority.
"""
