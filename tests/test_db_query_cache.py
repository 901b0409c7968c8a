"""A sync's long multi-row INSERTs are parsed by psycopg once, not per batch
(api/db.py: psycopg caches only short queries by default)."""

import pytest

pytest.importorskip("psycopg")


def test_a_long_insert_is_parsed_once(app):
    from psycopg import _queries
    from psycopg.adapt import Transformer

    # Shaped like SQLAlchemy's insertmanyvalues INSERT of 20 incidents x 30 columns.
    columns = [f"c{n}" for n in range(30)]
    rows = [f"({', '.join(f'%({c}__{r})s' for c in columns)})" for r in range(20)]
    query = f"INSERT INTO t ({', '.join(columns)}) VALUES " + ", ".join(rows)
    params = {f"{c}__{r}": r for c in columns for r in range(20)}
    assert len(query) > 4096 and len(params) > 50  # beyond psycopg's own limits

    before = _queries._query2pg.cache_info()
    for _ in range(3):
        _queries.PostgresQuery(Transformer()).convert(query, params)
    after = _queries._query2pg.cache_info()
    assert after.hits - before.hits >= 2
