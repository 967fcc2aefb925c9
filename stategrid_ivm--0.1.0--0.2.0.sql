-- stategrid_ivm 0.1.0 -> 0.2.0 (ALTER EXTENSION stategrid_ivm UPDATE TO '0.2.0').
--
-- 0.1.0 is the first released version and its script, stategrid_ivm--0.1.0.sql, is frozen:
-- CREATE EXTENSION stategrid_ivm installs 0.1.0 and then runs this script, so a fresh install
-- and an updated one run the same statements. Every change of the SQL interface after 0.1.0
-- goes here (or into a later update script), never into stategrid_ivm--0.1.0.sql.

\echo Use "ALTER EXTENSION stategrid_ivm UPDATE TO '0.2.0'" to load this file. \quit
