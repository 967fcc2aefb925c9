-- Issue 13, items 4 and 6: values that are equal but not identical (numeric 1.0 and 1.00, float8
-- 0 and -0) reach every view, as the views' queries print them now: projections, joins, sums
-- and group keys; verify() compares by binary image, so it finds a table that differs
-- from its recomputation by image only, and it works on types without an equality (json, xml,
-- point), also in columns no view reads.
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS stategrid_ivm;
CREATE SCHEMA view_identical_values;
SET search_path = view_identical_values, public;

CREATE FUNCTION settle(p text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    bad text;
BEGIN
    PERFORM stategrid_ivm.sync(p);
    SELECT string_agg(format('%s (missing %s, extra %s)', view_name, missing_rows, extra_rows), '; '
                      ORDER BY view_name)
    INTO bad FROM stategrid_ivm.verify(p) WHERE NOT ok;
    RETURN coalesce('NOT OK: ' || bad, 'ok');
END
$$;

-- Each table's rows as text against its query's (a mirror's: its source's) rows as text, run
-- now: what a reader sees.
CREATE FUNCTION text_differences(p text) RETURNS TABLE (view_name text, differing_rows bigint)
LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT v.view_name, CASE WHEN v.kind = 'ods' THEN 'TABLE ' || substr(v.query, 11) ELSE v.query END AS query
             FROM stategrid_ivm.views v WHERE v.pipeline = p ORDER BY v.view_name LOOP
        view_name := r.view_name;
        EXECUTE format('SELECT count(*) FROM ((SELECT t::text FROM %1$s t EXCEPT ALL SELECT q::text FROM (%2$s) q)'
                       ' UNION ALL (SELECT q::text FROM (%2$s) q EXCEPT ALL SELECT t::text FROM %1$s t)) d',
                       r.view_name, r.query)
        INTO differing_rows;
        RETURN NEXT;
    END LOOP;
END
$$;

CREATE TABLE meter (
    id int PRIMARY KEY,
    grp int,
    rate numeric,            -- grouped by: a group's key may change its image only
    amount numeric,
    reading float8,
    label text
);
CREATE TABLE reading (
    id numeric PRIMARY KEY,  -- a key that may change its image only
    meter_id int,
    v numeric
);
INSERT INTO meter VALUES (1, 1, 0.5, 1.0, 0, 'north'), (2, 1, 0.7, 2.5, 1.5, 'south'), (3, 2, 0.9, 3, 0, 'east');
INSERT INTO reading VALUES (1.0, 1, 10.0), (2, 2, 20);

SELECT stategrid_ivm.create_pipeline('vid');
SELECT stategrid_ivm.add_source('vid', 'meter') IS NOT NULL AS added;
SELECT stategrid_ivm.add_source('vid', 'reading') IS NOT NULL AS added;
-- a projection, a join, sums (one over another view), a group by a numeric column
SELECT stategrid_ivm.add_view('vid', 'v_meter',
    'SELECT id, grp, rate, amount, reading, label FROM ods_meter') IS NOT NULL AS added;
SELECT stategrid_ivm.add_view('vid', 'v_reading',
    'SELECT r.id, r.v, m.amount, m.label FROM ods_reading r LEFT JOIN ods_meter m ON m.id = r.meter_id') IS NOT NULL AS added;
SELECT stategrid_ivm.add_view('vid', 'v_total',
    'SELECT grp, sum(amount) AS total, sum(reading) AS total_reading, count(*) AS meters FROM v_meter GROUP BY grp')
    IS NOT NULL AS added;
SELECT stategrid_ivm.add_view('vid', 'v_rate',
    'SELECT rate, sum(amount) AS total, min(label) AS label FROM ods_meter GROUP BY rate') IS NOT NULL AS added;
SELECT stategrid_ivm.start_pipeline('vid');
SELECT settle('vid');
SELECT * FROM text_differences('vid');

-- ---- equal values of another image, in one source transaction ---------------------------------
BEGIN;
UPDATE meter SET amount = 1.00, reading = '-0' WHERE id = 1;   -- 1.0 -> 1.00, 0 -> -0
UPDATE meter SET amount = 3.000, reading = '-0' WHERE id = 3;  -- group 2's sums: 3.000 and -0
UPDATE meter SET rate = 0.50 WHERE id = 1;                     -- a group key 0.5 -> 0.50
UPDATE reading SET id = 1.00, v = 10.00 WHERE id = 1.0;        -- a view's key 1.0 -> 1.00
COMMIT;
SELECT settle('vid');
-- every view prints what its query prints now
SELECT * FROM text_differences('vid');
SELECT id, amount, reading, rate, label FROM ods_meter ORDER BY id;
SELECT id, amount, reading, rate, label FROM v_meter ORDER BY id;
SELECT id, v, amount, label FROM v_reading ORDER BY id;
SELECT grp, total, total_reading, meters FROM v_total ORDER BY grp;
SELECT rate, total, label FROM v_rate ORDER BY rate;
-- and back: -0 -> 0, 1.00 -> 1.0
UPDATE meter SET amount = 1.0, reading = 0 WHERE id = 1;
SELECT settle('vid');
SELECT * FROM text_differences('vid');
SELECT grp, total, total_reading FROM v_total ORDER BY grp;

-- ---- verify() finds a difference of image only -------------------------------------------------
-- (damage the way only a superuser can, with the guard's triggers off: sql/direct_writes.sql)
BEGIN;
SET LOCAL session_replication_role = replica;
UPDATE v_meter SET amount = 1.000 WHERE id = 1;      -- was 1.0 (and v_total's sum 3.5)
UPDATE v_total SET total_reading = 0 WHERE grp = 2;   -- was -0
UPDATE ods_reading SET v = 20.0 WHERE id = 2;        -- was 20 (and v_reading's)
COMMIT;
SELECT view_name, missing_rows, extra_rows, ok FROM stategrid_ivm.verify('vid') ORDER BY view_name;
SELECT stategrid_ivm.refresh_view('v_meter') AS refreshed;
SELECT stategrid_ivm.refresh_view('v_total') AS refreshed;
BEGIN;
SET LOCAL session_replication_role = replica;
UPDATE ods_reading SET v = 20 WHERE id = 2;
COMMIT;
SELECT settle('vid');

-- a table made beforehand with narrower types (numeric(12,3) for a sum, integer for a count):
-- verify() compares the query's values as the table stores them
CREATE TABLE v_adopted (grp int, total numeric(12,3), meters integer);
SELECT stategrid_ivm.add_view('vid', 'v_adopted',
    'SELECT grp, sum(amount) AS total, count(*) AS meters FROM ods_meter GROUP BY grp') IS NOT NULL AS added;
UPDATE meter SET amount = 2.50 WHERE id = 2;
SELECT settle('vid');
SELECT * FROM v_adopted ORDER BY grp;

SELECT stategrid_ivm.drop_pipeline('vid', true);

-- ---- types without an equality: json, xml, point ----------------------------------------------
-- verify() compares them by image, in columns a view reads and in columns none reads
CREATE TABLE device (
    id int PRIMARY KEY,
    config json,       -- read by no view
    spec xml,
    location point,
    attrs jsonb
);
INSERT INTO device VALUES (1, '{"a": 1}', '<d>1</d>', '(1,2)', '{"b": 2}'), (2, '[]', '<d/>', '(0,0)', '{}');
SELECT stategrid_ivm.create_pipeline('vjs');
SELECT stategrid_ivm.add_source('vjs', 'device') IS NOT NULL AS added;
SELECT stategrid_ivm.add_view('vjs', 'v_device', 'SELECT id, spec, location, attrs FROM ods_device') IS NOT NULL AS added;
SELECT stategrid_ivm.start_pipeline('vjs');
SELECT settle('vjs');
-- same text for json ({"a": 1} and {"a":1} are different json, equal jsonb), a point moved to -0
UPDATE device SET config = '{"a":1}', spec = '<d>2</d>', location = '(-0,2)', attrs = '{"b":2}' WHERE id = 1;
INSERT INTO device VALUES (3, '{"c": [1, 2]}', '<e/>', '(3,4)', '[1]');
DELETE FROM device WHERE id = 2;
SELECT settle('vjs');
SELECT * FROM text_differences('vjs');
SELECT id, config, spec, location, attrs FROM ods_device ORDER BY id;
SELECT id, spec, location, attrs FROM v_device ORDER BY id;
-- a point that differs from its recomputation by its image only: found
BEGIN;
SET LOCAL session_replication_role = replica;
UPDATE v_device SET location = '(0,2)' WHERE id = 1;
UPDATE ods_device SET config = '{"c":[1,2]}' WHERE id = 3;
COMMIT;
SELECT view_name, missing_rows, extra_rows, ok FROM stategrid_ivm.verify('vjs') ORDER BY view_name;
SELECT stategrid_ivm.drop_pipeline('vjs', true);

DROP SCHEMA view_identical_values CASCADE;
