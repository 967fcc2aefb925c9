# Reads of the warehouse on a physical hot standby (issue 17, deliverable 3): a reader on the
# standby sees the warehouse as of a source commit, never half of one, and never a batch of the
# worker half applied.
#
# Every source transaction of the writer keeps an invariant that spans tables and rows:
#   - it inserts two readings whose amounts add up to exactly 100 (different users, regions,
#     days), so the total of all readings minus the starting total is 50 times the number of
#     readings added: sum - S0 = 50 * (count - C0);
#   - it moves an amount between two readings (one goes down, the other up by as much);
#   - now and then it moves a user, with all its readings, to another region, or deletes a
#     reading and inserts another one with the same amount.
# So in every state a source commit leaves, the DWD detail, the ODS mirror and both DWS tables
# hold the same total, and that total and the DWD's count satisfy the equation. A reader on the
# standby checks this in one statement (one snapshot) over and over, while the writer runs on
# the primary and the worker applies its transactions in batches there.
#
# stategrid_ivm.pipelines reads on the standby too (it failed: "recovery is in progress", from
# the WAL position functions), with the replicated state and the lag left to the primary.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SgivmTap;
use IPC::Run;

my $seconds = 20;    # how long the reader reads

my $primary = stategrid_node('standby_primary', conf => "log_min_messages = warning\n");
$primary->safe_psql('postgres', "CREATE EXTENSION stategrid_ivm;\n" . source_file('examples/stategrid/schema.sql') . q{
INSERT INTO power_user (user_id, user_name, usage_type, region_id, region_name)
SELECT g, 'user ' || g, '居民', 11 + g % 4, 'region ' || (11 + g % 4) FROM generate_series(1, 40) g;
INSERT INTO power_consumption (user_id, consumption_amount, consumption_cost, consumption_date)
SELECT 1 + g % 40, 10 + g % 7, 1, timestamp '2024-03-01' + make_interval(hours => g % 72)
FROM generate_series(1, 400) g;
CREATE TABLE start_state AS SELECT sum(consumption_amount) AS s0, count(*) AS c0 FROM power_consumption;
CREATE TABLE writer_ctl (stop boolean NOT NULL);
INSERT INTO writer_ctl VALUES (false);

CREATE FUNCTION some_reading() RETURNS bigint LANGUAGE sql AS $$
	SELECT consumption_id FROM power_consumption
	WHERE consumption_id >= floor(random() * (SELECT max(consumption_id) FROM power_consumption))
	ORDER BY consumption_id LIMIT 1
$$;

CREATE PROCEDURE write_pairs(INOUT committed int DEFAULT 0) LANGUAGE plpgsql AS $$
DECLARE
	a numeric;
	x numeric;
	r1 bigint;
	r2 bigint;
	v_amount numeric;
BEGIN
	committed := 0;
	WHILE NOT (SELECT stop FROM writer_ctl) LOOP
		a := round((random() * 100)::numeric, 2);
		INSERT INTO power_consumption (user_id, consumption_amount, consumption_cost, consumption_date)
		VALUES (1 + floor(random() * 40)::int, a, 1, timestamp '2024-03-01' + make_interval(hours => floor(random() * 72)::int)),
		       (1 + floor(random() * 40)::int, 100 - a, 1, timestamp '2024-03-01' + make_interval(hours => floor(random() * 72)::int));
		r1 := some_reading();
		r2 := some_reading();
		IF r1 <> r2 THEN
			x := round((random() * 10)::numeric, 2);
			UPDATE power_consumption SET consumption_amount = consumption_amount - x WHERE consumption_id = r1;
			UPDATE power_consumption SET consumption_amount = consumption_amount + x WHERE consumption_id = r2;
		END IF;
		IF random() < 0.1 THEN
			UPDATE power_user SET region_id = 11 + floor(random() * 4)::int, region_name = 'region ' || region_id
			WHERE user_id = 1 + floor(random() * 40)::int;
		END IF;
		IF random() < 0.1 THEN
			r1 := some_reading();
			DELETE FROM power_consumption WHERE consumption_id = r1 RETURNING consumption_amount INTO v_amount;
			INSERT INTO power_consumption (user_id, consumption_amount, consumption_cost, consumption_date)
			SELECT 1 + floor(random() * 40)::int, v_amount, 1, timestamp '2024-03-02' WHERE v_amount IS NOT NULL;
		END IF;
		COMMIT;
		committed := committed + 1;
		PERFORM pg_sleep(0.003);    -- (smaller batches: more states for the reader)
	END LOOP;
END
$$;

-- The reader (created here, run on the standby, which cannot create anything): one statement per
-- read, so one snapshot for all the tables it compares, and one transaction per read, as
-- readers of a standby do (a transaction that holds its locks for long holds up the replay of
-- an autovacuum's truncation, max_standby_streaming_delay). Returns the reads, the states that
-- broke the invariant (with the first one), and how many different states it saw.
CREATE PROCEDURE read_loop(seconds float8, INOUT iterations int DEFAULT 0, INOUT broken int DEFAULT 0,
                           INOUT first_broken text DEFAULT NULL, INOUT states int DEFAULT 0)
LANGUAGE plpgsql AS $$
DECLARE
	v_deadline timestamptz := clock_timestamp() + make_interval(secs => seconds);
	v_ok boolean;
	v_state text;
	v_last text := '';
BEGIN
	WHILE clock_timestamp() < v_deadline LOOP
		SELECT d.s = o.s AND d.s = r.s AND d.s = u.s AND d.c = o.c AND d.s - st.s0 = 50 * (d.c - st.c0),
		       format('dwd %s/%s ods %s/%s dws_region %s dws_user %s', d.s, d.c, o.s, o.c, r.s, u.s)
		INTO v_ok, v_state
		FROM (SELECT sum(consumption_amount) AS s, count(*) AS c FROM dwd_power_consumption_detail) d,
		     (SELECT sum(consumption_amount) AS s, count(*) AS c FROM ods_power_consumption) o,
		     (SELECT sum(total_consumption) AS s FROM dws_region_daily_stats) r,
		     (SELECT sum(total_consumption) AS s FROM dws_user_ranking) u,
		     start_state st;
		COMMIT;
		iterations := iterations + 1;
		IF NOT v_ok THEN
			broken := broken + 1;
			first_broken := coalesce(first_broken, v_state);
		END IF;
		IF v_state <> v_last THEN
			states := states + 1;
			v_last := v_state;
		END IF;
	END LOOP;
END
$$;
SELECT stategrid_ivm.create_stategrid_pipeline();
});
$primary->safe_psql('postgres', q{SELECT stategrid_ivm.sync('stategrid')});

$primary->backup('bk');
my $standby = PostgreSQL::Test::Cluster->new('standby_reader');
$standby->init_from_backup($primary, 'bk', has_streaming => 1);
$standby->start;
$primary->wait_for_catchup($standby);
is($standby->safe_psql('postgres', q{SELECT pg_is_in_recovery()}), 't', 'the reader reads a hot standby');

# ---- the writer on the primary, the reader on the standby ----------------------------------------
my ($wout, $werr) = ('', '');
my $writer = IPC::Run::start(
	[ 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', $primary->connstr('postgres'), '-c', 'CALL write_pairs()' ],
	'<', \undef, '>', \$wout, '2>', \$werr);
my ($iterations, $broken, $first_broken, $states) =
  split /\|/, $standby->safe_psql('postgres', "CALL read_loop($seconds)");
$primary->safe_psql('postgres', q{UPDATE writer_ctl SET stop = true});
$writer->finish;
is($werr, '', 'the writer ran without an error');
chomp $wout;
note "writer: $wout source transactions; reader: $iterations reads of the standby, $states different states";

is($broken, 0, 'no read on the standby saw half a source transaction or half a batch')
  or diag "first broken state: $first_broken";
cmp_ok($states, '>=', 20, 'the reader saw the warehouse change while it read');
cmp_ok($iterations, '>', $states, 'and read every state more than once on average');

# ---- the standby ends where the primary is ------------------------------------------------------------
$primary->safe_psql('postgres', q{SELECT stategrid_ivm.sync('stategrid')});
is($primary->safe_psql('postgres', q{SELECT count(*) FROM stategrid_ivm.verify('stategrid') WHERE NOT ok}), '0',
	'verify() is clean on the primary');
$primary->wait_for_catchup($standby);
# The status view reads on the standby too (the lag is the primary's to say: NULL here).
is( $standby->safe_psql('postgres', q{
		SELECT name, state, applied_lsn IS NOT NULL, lag_bytes IS NULL, lag_seconds IS NULL, retained_wal_bytes IS NULL
		FROM stategrid_ivm.pipelines}),
	'stategrid|running|t|t|t|t', 'stategrid_ivm.pipelines reads on the standby: the replicated state, no lag');
my $dws = q{SELECT region_id, stat_date, total_consumption, user_count FROM dws_region_daily_stats ORDER BY 1, 2};
is($standby->safe_psql('postgres', $dws), $primary->safe_psql('postgres', $dws), 'the standby has the same DWS');

$standby->stop;
$primary->stop;
done_testing();
