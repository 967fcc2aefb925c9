# What the scale-out TAP tests share (t/052_fan_in.pl, t/053_standby_reads.pl,
# t/054_failover.pl, t/055_roll_up.pl): a writer of State Grid source rows that runs in the
# background until told to stop, the provinces' writers through a restart of the national
# cluster and a crash of a province, polling, verify() as text, and the DWS recomputed by plain
# views over given source tables (or the union of the provinces'), printed as text for
# comparison with the maintained tables.
package SgivmScale;

use strict;
use warnings;

use Exporter 'import';
use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);

our @EXPORT = qw(writer_sql start_writer stop_writer writers_through_failures wait_for not_ok recompute_views
  recompute_union dws_text);

# The writer's objects on a server that holds the source tables (examples/stategrid/schema.sql):
# users from $user_base on (a sequence), readings from $user_base * 1000 on (the bigserial's
# sequence restarted there), regions $region_base .. $region_base + 4. So servers given
# different bases write disjoint keys. sg_write(max_iterations, seconds) runs one transaction per
# iteration until either is reached or sg_writer_ctl.stop is set; each inserts a user and three
# readings, corrects a reading, and now and then deletes a reading or moves a user to another
# region. It returns the number of transactions it committed.
sub writer_sql
{
	my ($user_base, $region_base) = @_;
	my $reading_base = $user_base * 1000;
	return qq{
CREATE SEQUENCE sg_user_seq START $user_base;
ALTER SEQUENCE power_consumption_consumption_id_seq RESTART WITH $reading_base;
CREATE TABLE sg_writer_ctl (stop boolean NOT NULL);
INSERT INTO sg_writer_ctl VALUES (false);
CREATE FUNCTION sg_some_user() RETURNS bigint LANGUAGE sql AS \$\$
	SELECT user_id FROM power_user
	WHERE user_id >= $user_base + floor(random() * (SELECT last_value - $user_base + 1 FROM sg_user_seq))
	ORDER BY user_id LIMIT 1
\$\$;
CREATE FUNCTION sg_some_reading() RETURNS bigint LANGUAGE sql AS \$\$
	SELECT consumption_id FROM power_consumption
	WHERE consumption_id >= $reading_base
	      + floor(random() * (SELECT last_value - $reading_base + 1 FROM power_consumption_consumption_id_seq))
	ORDER BY consumption_id LIMIT 1
\$\$;
CREATE PROCEDURE sg_write(max_iterations int, seconds float8, INOUT committed int DEFAULT 0)
LANGUAGE plpgsql AS \$\$
DECLARE
	v_deadline timestamptz := clock_timestamp() + make_interval(secs => seconds);
	v_user bigint;
	v_region int;
	v_id bigint;
BEGIN
	committed := 0;
	WHILE committed < max_iterations AND clock_timestamp() < v_deadline
	      AND NOT (SELECT stop FROM sg_writer_ctl) LOOP
		v_user := nextval('sg_user_seq');
		v_region := $region_base + v_user % 5;
		INSERT INTO power_user (user_id, user_name, usage_type, region_id, region_name, address, phone)
		VALUES (v_user, 'user ' || v_user, (ARRAY['居民','商业','工业'])[1 + v_user % 3], v_region,
		        'region ' || v_region, 'street ' || v_user, '138' || lpad(v_user::text, 8, '0'));
		INSERT INTO power_consumption (user_id, consumption_amount, consumption_cost, consumption_date,
		                               meter_reading_before, meter_reading_after)
		SELECT u, a, round(a * 0.56, 2), timestamp '2024-03-01' + make_interval(secs => floor(random() * 3 * 86400)),
		       0, a
		FROM (SELECT sg_some_user() AS u, round((1 + random() * 99)::numeric, 2) AS a
		      FROM generate_series(1, 3)) r
		WHERE u IS NOT NULL;
		-- (the random row first: a volatile function in WHERE would be called for every row)
		v_id := sg_some_reading();
		UPDATE power_consumption SET consumption_amount = consumption_amount + 1,
		                             consumption_cost = consumption_cost + 0.56
		WHERE consumption_id = v_id;
		IF random() < 0.2 THEN
			v_id := sg_some_reading();
			DELETE FROM power_consumption WHERE consumption_id = v_id;
		END IF;
		IF random() < 0.1 THEN
			v_region := $region_base + floor(random() * 5)::int;
			v_id := sg_some_user();
			UPDATE power_user SET region_id = v_region, region_name = 'region ' || v_region, update_time = now()
			WHERE user_id = v_id;
		END IF;
		COMMIT;
		committed := committed + 1;
		PERFORM pg_sleep(0.005);
	END LOOP;
END
\$\$;
};
}

# Starts sg_write in the background on $node (database postgres) for at most $seconds; returns a
# handle for stop_writer. A crash of the node ends it (stop_writer then returns 0).
sub start_writer
{
	my ($node, $seconds) = @_;
	$node->safe_psql('postgres', q{UPDATE sg_writer_ctl SET stop = false});
	my %w = (out => '', err => '', node => $node);
	$w{h} = IPC::Run::start(
		[ 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'),
		  '-c', "CALL sg_write(100000000, $seconds)" ],
		'<', \undef, '>', \$w{out}, '2>', \$w{err});
	return \%w;
}

# Tells the writer to stop (unless its node crashed: $crashed) and waits for it; returns the
# number of transactions it committed.
sub stop_writer
{
	my ($w, $crashed) = @_;
	$w->{node}->safe_psql('postgres', q{UPDATE sg_writer_ctl SET stop = true}) unless $crashed;
	$w->{h}->finish;
	return 0 if $crashed;
	die "the writer failed: $w->{err}" if $w->{h}->result(0) != 0;
	chomp(my $n = $w->{out});
	return $n;
}

# Writers in both provinces ($prov->{p1}, $prov->{p2}: writer_sql loaded) while the national
# cluster restarts, then province 2 crashes (-m immediate) and comes back with a new writer; a
# few seconds later both stop. Checks that both wrote; returns their committed counts.
sub writers_through_failures
{
	my ($national, $prov) = @_;
	my %writer = map { $_ => start_writer($prov->{$_}, 60) } qw(p1 p2);
	sleep 2;
	$national->restart;
	note 'national cluster restarted';
	sleep 2;
	$prov->{p2}->stop('immediate');
	stop_writer($writer{p2}, 1);
	sleep 1;    # (province 1 goes on writing; the national apply worker of province 2 retries)
	$prov->{p2}->start;
	note 'province 2 crashed and restarted';
	$writer{p2} = start_writer($prov->{p2}, 60);
	sleep 3;
	my %committed = map { $_ => stop_writer($writer{$_}) } qw(p1 p2);
	note "writers: province 1 committed $committed{p1} transactions, province 2 (after its crash) $committed{p2}";
	cmp_ok($committed{$_}, '>', 0, "the writer of province $_ wrote") for qw(p1 p2);
	return %committed;
}

# Polls a boolean query until it is true; returns 0 after $seconds (default 60).
sub wait_for
{
	my ($node, $db, $sql, $seconds) = @_;
	my $deadline = time() + ($seconds // 60);
	while (1)
	{
		my $v = $node->safe_psql($db, $sql);
		return 1 if $v eq 't';
		return 0 if time() > $deadline;
		usleep(100_000);
	}
}

# The rows of verify() of pipeline $pipeline that are not ok, as text ('' when all are).
sub not_ok
{
	my ($node, $db, $pipeline) = @_;
	return $node->safe_psql($db, qq{
		SELECT coalesce(string_agg(format('%s (missing %s, extra %s)', view_name, missing_rows, extra_rows), '; '), '')
		FROM stategrid_ivm.verify('$pipeline') WHERE ok IS NOT TRUE});
}

# Creates schema $schema in $db with the warehouse as plain views over the tables $user_rel and
# $cons_rel (in place of the ODS mirrors): the queries of stategrid_warehouse_views(), read from
# database $views_db of the same node (which has the extension). A full recomputation, by
# PostgreSQL alone.
sub recompute_views
{
	my ($node, $db, $schema, $user_rel, $cons_rel, $views_db) = @_;
	my $views = $node->safe_psql($views_db, q{
		SELECT string_agg(format('CREATE VIEW %I AS %s;', view_name, query), E'\n' ORDER BY ord)
		FROM stategrid_ivm.stategrid_warehouse_views()});
	$node->safe_psql($db, qq{
		CREATE SCHEMA $schema;
		SET search_path = $schema, public;
		CREATE VIEW ods_power_user AS SELECT * FROM $user_rel;
		CREATE VIEW ods_power_consumption AS SELECT * FROM $cons_rel;
		$views
	});
}

# Database recompute on $national with the source tables of both provinces ($prov->{p1},
# $prov->{p2}) copied into one set (schema $schema_sql: examples/stategrid/schema.sql), and the
# warehouse as plain views over them in schema union_of_provinces.
sub recompute_union
{
	my ($national, $prov, $schema_sql) = @_;
	my $dir = PostgreSQL::Test::Utils::tempdir();
	$national->safe_psql('postgres', 'CREATE DATABASE recompute');
	$national->safe_psql('recompute', $schema_sql);
	for my $p (qw(p1 p2))
	{
		for my $t (qw(power_user power_consumption))
		{
			$prov->{$p}->safe_psql('postgres', "COPY $t TO '$dir/$p.$t'");
			$national->safe_psql('recompute', "COPY $t FROM '$dir/$p.$t'");
		}
	}
	recompute_views($national, 'recompute', 'union_of_provinces', 'public.power_user', 'public.power_consumption',
		'postgres');
}

# Both DWS tables of schema $schema in $db as text (without their now() columns), in one order.
sub dws_text
{
	my ($node, $db, $schema) = @_;
	return $node->safe_psql($db, qq{
		SELECT 'region', region_id, region_name, stat_date, total_consumption, total_cost, user_count,
		       avg_consumption, max_consumption, min_consumption
		FROM $schema.dws_region_daily_stats ORDER BY region_id, stat_date;
		SELECT 'user', user_id, user_name, region_id, region_name, stat_date, total_consumption, total_cost, ranking
		FROM $schema.dws_user_ranking ORDER BY user_id, region_id, stat_date;
	});
}

1;
