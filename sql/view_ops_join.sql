-- Issue 16, item 3: the general join operator (src/core/join_plan.cpp), one view per construct,
-- each compared after every change with its own query run on the mirrors.
--
-- Views: an inner join on a non-key column (many-to-many), a self-join, a chain of three tables,
-- a comma join with a WHERE equality, a CROSS JOIN of small tables, LEFT / RIGHT / FULL outer
-- joins on a non-key equality (also with extra ON conditions on either side), a LEFT JOIN chain
-- (a ⟕ b ⟕ c on b's column), an outer join whose nullable side is an inner join, a FULL JOIN of
-- three tables, EXISTS, NOT EXISTS, IN, NOT IN (NULLs in the subquery's column and in the outer
-- column), an uncorrelated EXISTS, a subquery correlated by an inequality, subqueries with extra
-- conditions, projections that select no key (the view keeps added sgivm_* key columns), and
-- identical output rows made of different base rows.
--
-- A stream of changes, each its own source transaction (and one batch of several transactions
-- taken while the pipeline is paused): NULL join keys, duplicate rows, the last match leaving
-- and the first arriving (NULL-extended rows retracted and restored), join keys and primary keys
-- updated, a table emptied and refilled, TRUNCATE, a NULL appearing in and leaving a NOT IN
-- subquery. After every step, step() waits for the worker and compares each view's own columns
-- (not the added sgivm_* ones) with its query over the mirrors, as text, a multiset both ways,
-- and runs verify(): it prints 'ok', or each view that differs and by how many rows.
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS stategrid_ivm;
CREATE SCHEMA view_ops_join;
SET search_path = view_ops_join, public;

-- The rows of view v (its columns but the added sgivm_* ones) and of its query, as text, that
-- the other lacks (EXCEPT ALL both ways).
CREATE FUNCTION differing_rows(v regclass, query text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    cols text;
    n bigint;
BEGIN
    SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO cols
    FROM pg_attribute WHERE attrelid = v AND attnum > 0 AND NOT attisdropped AND attname NOT LIKE 'sgivm\_%';
    EXECUTE format('SELECT count(*) FROM ((SELECT ROW(%1$s)::text FROM %2$s EXCEPT ALL SELECT ROW(%1$s)::text FROM (%3$s) q)'
                   ' UNION ALL (SELECT ROW(%1$s)::text FROM (%3$s) q EXCEPT ALL SELECT ROW(%1$s)::text FROM %2$s)) d',
                   cols, v, query)
    INTO n;
    RETURN n;
END
$$;

-- sync; then every view against its query, and verify(): 'ok', or what differs.
CREATE FUNCTION step(label text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    bad text;
BEGIN
    PERFORM stategrid_ivm.sync('vjoin');
    SELECT string_agg(format('%s differs in %s rows', regexp_replace(view_name, '^view_ops_join\.', ''), n), '; '
                      ORDER BY view_name)
    INTO bad
    FROM (SELECT v.view_name, differing_rows(v.view_name::regclass, v.query) AS n
          FROM stategrid_ivm.views v WHERE v.pipeline = 'vjoin' AND v.kind <> 'ods') d
    WHERE n <> 0;
    SELECT concat_ws('; ', bad, string_agg(format('verify: %s (missing %s, extra %s)',
                                                  regexp_replace(view_name, '^view_ops_join\.', ''), missing_rows, extra_rows),
                                           '; ' ORDER BY view_name))
    INTO bad FROM stategrid_ivm.verify('vjoin') WHERE NOT ok;
    RETURN label || ': ' || CASE WHEN bad = '' THEN 'ok' ELSE 'NOT OK: ' || bad END;
END
$$;

-- a and b join on k (not a key: many-to-many); c.k names a b row (a chain a -> b -> c);
-- s1, s2 are crossed; sub feeds the subqueries.
CREATE TABLE a (id int PRIMARY KEY, k int, v text);
CREATE TABLE b (id int PRIMARY KEY, k int, w text);
CREATE TABLE c (id int PRIMARY KEY, k int, x text);
CREATE TABLE s1 (id int PRIMARY KEY, label text);
CREATE TABLE s2 (id int PRIMARY KEY, label text);
CREATE TABLE sub (id int PRIMARY KEY, val int, flag boolean);
CREATE TABLE d (id1 int, id2 text, k int, PRIMARY KEY (id1, id2));
INSERT INTO a VALUES (1, 1, 'a1'), (2, 1, 'a2'), (3, 2, 'a3'), (4, NULL, 'a4'), (5, 3, 'a5'), (6, 9, 'dup'), (7, 9, 'dup');
INSERT INTO b VALUES (1, 1, 'b1'), (2, 1, 'b2'), (3, 2, 'b3'), (4, NULL, 'b4'), (5, 4, 'b5'), (6, 9, 'b9');
INSERT INTO c VALUES (1, 1, 'c1'), (2, 1, 'c2'), (3, 3, 'c3'), (4, NULL, 'c4'), (5, 6, 'c6');
INSERT INTO s1 VALUES (1, 'x'), (2, 'y');
INSERT INTO s2 VALUES (1, 'p'), (2, 'q'), (3, 'r');
INSERT INTO sub VALUES (1, 1, true), (2, 2, false), (3, 5, true);
INSERT INTO d VALUES (1, 'x', 1), (1, 'y', 2), (2, 'x', NULL), (3, 'z', 7);

SELECT stategrid_ivm.create_pipeline('vjoin');
SELECT count(stategrid_ivm.add_source('vjoin', t)) AS sources FROM unnest(ARRAY['a', 'b', 'c', 's1', 's2', 'sub', 'd']) t;

CREATE FUNCTION add(name text, query text) RETURNS void LANGUAGE sql AS $$
    SELECT stategrid_ivm.add_view('vjoin', name, query)$$;
-- inner joins
SELECT add('j_m2m', $q$SELECT a.id AS a_id, b.id AS b_id, a.k, a.v, b.w
    FROM ods_a a JOIN ods_b b ON a.k = b.k$q$);
SELECT add('j_self', $q$SELECT x.id AS x_id, y.id AS y_id, x.k, x.v AS x_v, y.v AS y_v
    FROM ods_a x JOIN ods_a y ON x.k = y.k AND x.id <> y.id$q$);
SELECT add('j_chain', $q$SELECT a.id AS a_id, b.id AS b_id, c.id AS c_id, a.v, b.w, c.x
    FROM ods_a a JOIN ods_b b ON b.k = a.k JOIN ods_c c ON c.k = b.id$q$);
SELECT add('j_comma', $q$SELECT a.id AS a_id, c.id AS c_id, a.v, c.x
    FROM ods_a a, ods_c c WHERE a.k = c.k AND c.x <> 'c2'$q$);
SELECT add('j_cross', $q$SELECT s1.id AS s1_id, s2.id AS s2_id, s1.label || s2.label AS pair
    FROM ods_s1 s1 CROSS JOIN ods_s2 s2$q$);
-- outer joins
SELECT add('j_left', $q$SELECT a.id AS a_id, b.id AS b_id, a.v, b.w
    FROM ods_a a LEFT JOIN ods_b b ON a.k = b.k$q$);
SELECT add('j_left_on', $q$SELECT a.id AS a_id, b.id AS b_id, a.v, b.w
    FROM ods_a a LEFT JOIN ods_b b ON a.k = b.k AND b.w <> 'zz' AND a.v <> 'a2'$q$);
SELECT add('j_right', $q$SELECT a.id AS a_id, b.id AS b_id, a.v, b.w
    FROM ods_a a RIGHT JOIN ods_b b ON b.k = a.k$q$);
SELECT add('j_full', $q$SELECT a.id AS a_id, b.id AS b_id, a.k AS a_k, b.k AS b_k
    FROM ods_a a FULL JOIN ods_b b ON a.k = b.k$q$);
SELECT add('j_full_on', $q$SELECT a.id AS a_id, b.id AS b_id, a.v, b.w
    FROM ods_a a FULL JOIN ods_b b ON a.k = b.k AND a.id <> b.id AND b.w <> 'zz'$q$);
SELECT add('j_left_chain', $q$SELECT a.id AS a_id, b.id AS b_id, c.id AS c_id, a.v, b.w, c.x
    FROM ods_a a LEFT JOIN ods_b b ON b.k = a.k LEFT JOIN ods_c c ON c.k = b.id$q$);
SELECT add('j_left_inner', $q$SELECT a.id AS a_id, b.id AS b_id, c.id AS c_id, a.v, b.w, c.x
    FROM ods_a a LEFT JOIN (ods_b b JOIN ods_c c ON c.k = b.id) ON b.k = a.k$q$);
SELECT add('j_full3', $q$SELECT a.id AS a_id, b.id AS b_id, c.id AS c_id, a.k AS a_k, b.k AS b_k, c.k AS c_k
    FROM ods_a a FULL JOIN ods_b b ON b.k = a.k FULL JOIN ods_c c ON c.k = b.id$q$);
-- subqueries in WHERE
SELECT add('j_exists', $q$SELECT a.id, a.k, a.v FROM ods_a a
    WHERE EXISTS (SELECT 1 FROM ods_sub s WHERE s.val = a.k)$q$);
SELECT add('j_not_exists', $q$SELECT a.id, a.k, a.v FROM ods_a a
    WHERE NOT EXISTS (SELECT 1 FROM ods_sub s WHERE s.val = a.k)$q$);
SELECT add('j_in', $q$SELECT a.id, a.k, a.v FROM ods_a a WHERE a.k IN (SELECT val FROM ods_sub)$q$);
SELECT add('j_not_in', $q$SELECT a.id, a.k, a.v FROM ods_a a WHERE a.k NOT IN (SELECT val FROM ods_sub)$q$);
SELECT add('j_exists_uncorr', $q$SELECT a.id, a.v FROM ods_a a
    WHERE EXISTS (SELECT 1 FROM ods_sub WHERE val > 4)$q$);
SELECT add('j_exists_lt', $q$SELECT a.id, a.v FROM ods_a a
    WHERE EXISTS (SELECT 1 FROM ods_sub s WHERE s.val > a.k)$q$);
SELECT add('j_sub_extra', $q$SELECT a.id, a.k, a.v FROM ods_a a
    WHERE EXISTS (SELECT 1 FROM ods_sub s WHERE s.val = a.k AND s.flag AND s.id < 100)
      AND a.k NOT IN (SELECT val FROM ods_sub WHERE NOT flag) AND a.v <> 'a2'$q$);
-- NOT IN over a column of an outer join's nullable side: NULL in the NULL-extended rows, which
-- pass only while the subquery is empty
SELECT add('j_left_not_in', $q$SELECT a.id AS a_id, b.id AS b_id, a.v
    FROM ods_a a LEFT JOIN ods_b b ON b.k = a.k WHERE b.k NOT IN (SELECT val FROM ods_sub)$q$);
SELECT add('j_join_not_in', $q$SELECT a.id AS a_id, b.id AS b_id, b.w
    FROM ods_a a JOIN ods_b b ON a.k = b.k WHERE b.id NOT IN (SELECT val FROM ods_sub WHERE flag)$q$);
-- no key selected, identical output rows
SELECT add('j_nokey', $q$SELECT a.v, b.w FROM ods_a a JOIN ods_b b ON a.k = b.k$q$);
SELECT add('j_dups', $q$SELECT a.k, a.v FROM ods_a a LEFT JOIN ods_b b ON a.k = b.k$q$);
SELECT add('j_nokey_full', $q$SELECT a.v, b.w FROM ods_a a FULL JOIN ods_b b ON a.k = b.k$q$);
-- a table with a key of two columns, one of them not selected
SELECT add('j_composite', $q$SELECT a.id AS a_id, d.id2, d.k FROM ods_a a FULL JOIN ods_d d ON d.k = a.k$q$);
-- compositions: over a join view (its key b_id NULL in NULL-extended rows), an aggregate over
-- one, a join over an aggregate view, a subquery over a join view
SELECT add('j_over_left', $q$SELECT l.a_id, l.b_id, l.v, c.id AS c_id
    FROM j_left l LEFT JOIN ods_c c ON c.k = l.a_id$q$);
SELECT add('g_over_right', $q$SELECT w, count(*) AS n, count(a_id) AS matched FROM j_right GROUP BY w$q$);
SELECT add('g_a_per_k', $q$SELECT k, count(*) AS n FROM ods_a GROUP BY k$q$);
SELECT add('j_over_agg', $q$SELECT b.id, b.w, g.n FROM ods_b b LEFT JOIN g_a_per_k g ON g.k = b.k$q$);
-- an outer join over an inner join with a view whose key is NULL in some rows (j_left's b_id)
SELECT add('j_nested_view', $q$SELECT d.id1, d.id2, l.a_id, l.b_id, c.id AS c_id
    FROM ods_d d LEFT JOIN (j_left l JOIN ods_c c ON c.k = l.a_id) ON l.a_id = d.k$q$);
SELECT add('j_exists_view', $q$SELECT c.id, c.x FROM ods_c c
    WHERE NOT EXISTS (SELECT 1 FROM j_full f WHERE f.b_id = c.k)$q$);

SELECT regexp_replace(view_name, '^view_ops_join\.', '') AS view_name, strategy
FROM stategrid_ivm.views WHERE pipeline = 'vjoin' AND kind <> 'ods' ORDER BY 1;
-- the keys a view without them keeps
SELECT attrelid::regclass AS view_name, attname FROM pg_attribute
WHERE attrelid IN ('j_nokey'::regclass, 'j_dups'::regclass, 'j_nokey_full'::regclass, 'j_composite'::regclass)
  AND attname LIKE 'sgivm\_%'
ORDER BY attrelid::regclass::text, attnum;

SELECT stategrid_ivm.start_pipeline('vjoin');
SELECT step('backfill');
SELECT a_id, b_id, v, w FROM j_left ORDER BY a_id, b_id;
SELECT * FROM j_dups ORDER BY k, v, sgivm_a_id, sgivm_b_id;

-- ---- the stream: each statement is its own source transaction --------------------------------
-- a5 (k 3) gets its first match: its NULL-extended rows go; then the match leaves again
INSERT INTO b VALUES (7, 3, 'b7');
SELECT step('first match arrives');
SELECT a_id, b_id, v, w FROM j_left WHERE a_id = 5;
DELETE FROM b WHERE id = 7;
SELECT step('last match leaves');
SELECT a_id, b_id, v, w FROM j_left WHERE a_id = 5;
-- NULL join keys: a new row with one, a row's key set to NULL and back
INSERT INTO a VALUES (8, NULL, 'a8');
SELECT step('NULL key inserted');
UPDATE b SET k = NULL WHERE id = 3;
SELECT step('the only match of a3 gets a NULL key');
UPDATE b SET k = 2 WHERE id = 3;
SELECT step('and gets it back');
-- join keys updated: a row moves from one set of partners to another
UPDATE a SET k = 2 WHERE id = 1;
SELECT step('a1 moves from k 1 to k 2');
UPDATE b SET k = 3 WHERE id = 2;
SELECT step('b2 moves from k 1 to k 3');
-- a duplicate row: identical output rows from different base rows, then one goes
INSERT INTO a VALUES (9, 2, 'a3');
SELECT step('a duplicate of a3');
SELECT * FROM j_dups WHERE v = 'a3' ORDER BY sgivm_a_id;
DELETE FROM a WHERE id = 3;
SELECT step('one of the duplicates goes');
-- an extra ON condition flips: the match leaves without its join key changing
UPDATE b SET w = 'zz' WHERE id = 1;
SELECT step('an ON condition turns false');
UPDATE a SET v = 'a2x' WHERE id = 2;
SELECT step('an ON condition on the preserved side turns true');
UPDATE b SET w = 'b1' WHERE id = 1;
SELECT step('and the first one true again');
-- NOT IN: a NULL appears in the subquery's column (no row passes), and leaves
INSERT INTO sub VALUES (4, NULL, false);
SELECT step('a NULL in the NOT IN subquery');
SELECT count(*) AS not_in_rows FROM j_not_in;
DELETE FROM sub WHERE id = 4;
SELECT step('the NULL leaves');
UPDATE sub SET val = NULL WHERE id = 2;
SELECT step('a value becomes NULL');
UPDATE sub SET val = 2 WHERE id = 2;
SELECT step('and is a value again');
-- NULL in the outer column of NOT IN: in the view only while the subquery is empty
UPDATE a SET k = NULL WHERE id = 5;
SELECT step('an outer NOT IN value becomes NULL');
DELETE FROM sub;
SELECT step('the subquery table emptied');
SELECT id, k, v FROM j_not_in ORDER BY id;
INSERT INTO sub VALUES (1, 1, true), (2, 2, false), (3, 5, true), (5, 9, true);
SELECT step('and refilled');
-- a correlated row's flag changes (the extra condition of the subqueries)
UPDATE sub SET flag = NOT flag WHERE id IN (1, 2);
SELECT step('subquery conditions flip');
-- primary keys updated: the chain's c rows lose and find their b row
UPDATE b SET id = 10 WHERE id = 1;
SELECT step('a b key changes');
UPDATE c SET k = 10 WHERE id = 1;
SELECT step('a c row follows it');
-- a table emptied and refilled
DELETE FROM b;
SELECT step('b emptied');
SELECT count(*) AS right_rows, (SELECT count(*) FROM j_left WHERE b_id IS NULL) AS null_extended FROM j_right;
INSERT INTO b VALUES (1, 1, 'b1'), (2, 1, 'b2'), (3, 2, 'b3'), (4, NULL, 'b4'), (5, 4, 'b5'), (6, 9, 'b9');
SELECT step('b refilled');
-- TRUNCATE of a source, then rows again
TRUNCATE c;
SELECT step('c truncated');
INSERT INTO c VALUES (1, 1, 'c1'), (2, 2, 'c2'), (3, 3, 'c3'), (4, NULL, 'c4'), (6, 1, 'c1');
SELECT step('c refilled');
-- the table with a two-column key: a key part and a join key change
UPDATE d SET id2 = 'w' WHERE id1 = 1 AND id2 = 'x';
SELECT step('d: a key part changes');
UPDATE d SET k = 3 WHERE id1 = 2;
SELECT step('d: a NULL join key gets a value');
-- the crossed tables
INSERT INTO s1 VALUES (3, 'z');
SELECT step('cross: a row more');
UPDATE s2 SET label = 'P' WHERE id = 1;
SELECT step('cross: a label changes');
TRUNCATE s2;
SELECT step('cross: one side truncated');
INSERT INTO s2 VALUES (7, 'u');
SELECT step('cross: one row back');
-- many rows at once: a self-join's groups merge, then part leaves
UPDATE a SET k = 1 WHERE k = 2;
SELECT step('k 2 merges into k 1');
INSERT INTO a SELECT i, i % 4, 'g' || (i % 3) FROM generate_series(100, 140) i;
INSERT INTO b SELECT i, CASE WHEN i % 5 = 0 THEN NULL ELSE i % 6 END, 'h' || (i % 2) FROM generate_series(100, 120) i;
SELECT step('bulk inserts');
DELETE FROM a WHERE id % 3 = 0;
SELECT step('bulk delete');
-- one batch of several transactions, taken while the pipeline is paused: matches come and go,
-- keys move, the subquery gets a NULL, a table is truncated and refilled
SELECT stategrid_ivm.pause_pipeline('vjoin');
INSERT INTO b VALUES (8, 3, 'b8');
UPDATE a SET k = 3 WHERE id = 2;
DELETE FROM b WHERE id = 8;
INSERT INTO sub VALUES (6, NULL, true);
TRUNCATE a;
INSERT INTO a VALUES (1, 1, 'a1'), (2, 3, 'a2'), (3, NULL, 'a3'), (4, 9, 'dup'), (5, 9, 'dup');
BEGIN;
UPDATE b SET k = k + 1 WHERE id < 5;
DELETE FROM sub WHERE id = 6;
INSERT INTO c VALUES (7, 3, 'c7');
COMMIT;
SELECT stategrid_ivm.resume_pipeline('vjoin');
SELECT step('a paused batch of several transactions');
-- everything emptied, then a row in each
DELETE FROM a;
DELETE FROM sub;
SELECT step('a and sub emptied');
INSERT INTO a VALUES (1, NULL, 'a1');
INSERT INTO sub VALUES (1, 1, true);
SELECT step('one row each');
-- a change two joins away from the preserved side, through a view row whose key has a NULL:
-- d's row gets its NULL-extended row back when the c row goes
INSERT INTO a VALUES (50, 50, 'a50');
INSERT INTO c VALUES (50, 50, 'c50');
INSERT INTO d VALUES (50, 'n', 50);
SELECT step('a row of d matched through j_left''s NULL-keyed row');
DELETE FROM c WHERE id = 50;
SELECT step('the c row goes');
SELECT id1, id2, a_id, b_id, c_id FROM j_nested_view WHERE id1 = 50;

SELECT stategrid_ivm.drop_pipeline('vjoin', true);
DROP SCHEMA view_ops_join CASCADE;
