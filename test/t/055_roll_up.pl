# Roll-up (issue 17, deliverable 2, second topology): two provincial clusters each run their own
# warehouse (create_stategrid_pipeline) over their own sources (disjoint users, readings and
# regions) and publish its DWD/DWS tables; a national cluster subscribes both into one set of
# tables, made from pg_dump -s of a province's, and runs a pipeline of its own over those
# subscribed tables: national totals per day and usage type (GROUP BY over the DWD detail) and
# the national top 100 users per day (a ranking top-N over DWS), maintained from the
# subscriptions' stream.
#
# Under writers in both provinces: the national cluster restarts, then province 2 crashes
# (-m immediate) and comes back (its own pipeline resumes from its slot). Afterwards everything
# is exact: verify() is clean on all three clusters, the subscribed DWS and both national views
# equal a recomputation, by plain views, over the union of the two provinces' sources (as text).
#
# Then what happens when the provinces' regions overlap (docs/scale-out.md): province 2 gets a
# user in province 1's region; its DWS row for that region and day has province 1's key, so the
# national apply fails (duplicate key) and everything later from province 2 waits; skipped, the
# next change of that row in province 2 overwrites province 1's aggregate on the national
# cluster with province 2's part of it. The national pipeline follows its tables whatever they
# hold: verify() stays clean there.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SgivmTap;
use SgivmScale;

my $schema = source_file('examples/stategrid/schema.sql');
my $conf = "log_min_messages = warning\n";
my $tmp = PostgreSQL::Test::Utils::tempdir();
my @warehouse = qw(dwd_power_user_info dwd_power_consumption_detail dws_region_daily_stats dws_user_ranking);

# The national views, over the ODS mirrors of the subscribed tables. (The recomputation below
# runs the same text over plain views of those names.)
my %national_view = (
	nat_daily_usage => q{SELECT consumption_date::date AS stat_date, usage_type,
	       SUM(consumption_amount) AS total_consumption, SUM(consumption_cost) AS total_cost,
	       COUNT(*) AS readings, COUNT(DISTINCT user_id) AS users
	FROM ods_dwd_power_consumption_detail
	GROUP BY consumption_date::date, usage_type},
	nat_user_top100 => q{SELECT * FROM (
	    SELECT user_id, user_name, region_id, stat_date, SUM(total_consumption) AS total_consumption,
	           ROW_NUMBER() OVER (PARTITION BY stat_date ORDER BY SUM(total_consumption) DESC, user_id) AS rn
	    FROM ods_dws_user_ranking
	    GROUP BY user_id, user_name, region_id, stat_date) r
	WHERE rn <= 100});
my %view_text = (
	nat_daily_usage => 'SELECT stat_date, usage_type, total_consumption, total_cost, readings, users '
	  . 'FROM %s.nat_daily_usage ORDER BY 1, 2',
	nat_user_top100 => 'SELECT stat_date, rn, user_id, user_name, region_id, total_consumption '
	  . 'FROM %s.nat_user_top100 ORDER BY 1, 2');

# ---- two provinces, each with its sources, its warehouse and a publication of it ----------------
my %base = (p1 => [ 1_000_000, 11 ], p2 => [ 2_000_000, 31 ]);
my %prov;
for my $p (qw(p1 p2))
{
	my $node = stategrid_node("roll_up_$p", conf => $conf);
	# (user_id and consumption_date NOT NULL: every warehouse table gets a primary key,
	# docs/replication.md, so the national copies find replicated rows by index)
	$node->safe_psql('postgres', "CREATE EXTENSION stategrid_ivm;\n" . $schema . writer_sql(@{ $base{$p} }) . q{
		ALTER TABLE power_consumption ALTER user_id SET NOT NULL, ALTER consumption_date SET NOT NULL;
		CALL sg_write(150, 60);
		-- (the writer's readings favour its first users: a reading of every user on every day,
		-- so that each day has more than 100 users and the top 100 leaves some out)
		INSERT INTO power_consumption (user_id, consumption_amount, consumption_cost, consumption_date,
		                               meter_reading_before, meter_reading_after)
		SELECT user_id, a, round(a * 0.56, 2), timestamp '2024-03-01 08:00' + d * interval '1 day', 0, a
		FROM power_user, generate_series(0, 2) d, LATERAL (SELECT round((1 + random() * 99)::numeric, 2) + d * 0 AS a) x;
		SELECT stategrid_ivm.create_stategrid_pipeline();
		CREATE PUBLICATION warehouse
			FOR TABLE dwd_power_user_info, dwd_power_consumption_detail, dws_region_daily_stats, dws_user_ranking
			WITH (publish = 'insert, update, delete');
	});
	$prov{$p} = $node;
}

# ---- the national cluster: the tables from pg_dump -s, the national pipeline, the subscriptions ---
my $national = stategrid_node('roll_up_national', conf => $conf . "wal_retrieve_retry_interval = '500ms'\n");
$national->safe_psql('postgres', 'CREATE EXTENSION stategrid_ivm');   # (the dump's guard triggers name it)
command_ok([ 'pg_dump', '-s', (map { ('-t', "public.$_") } @warehouse), '-f', "$tmp/warehouse.sql",
		'-d', $prov{p1}->connstr('postgres') ], 'pg_dump -s of a province\'s warehouse tables');
$national->command_ok([ 'psql', '-X', '-v', 'ON_ERROR_STOP=1', '-q', '-f', "$tmp/warehouse.sql",
		'-d', $national->connstr('postgres') ], 'the national tables made from the dump');
is( $national->safe_psql('postgres', q{
	SELECT string_agg(c.relname, ' ' ORDER BY c.relname) FROM pg_class c JOIN pg_index i ON i.indrelid = c.oid
	WHERE i.indisprimary AND c.relname LIKE 'dw%'}),
	join(' ', sort @warehouse), 'every national copy has its primary key');

$national->safe_psql('postgres', q{
	SELECT stategrid_ivm.create_pipeline('national');
	SELECT stategrid_ivm.add_source('national', 'dwd_power_consumption_detail');
	SELECT stategrid_ivm.add_source('national', 'dws_user_ranking');
} . join('', map { "SELECT stategrid_ivm.add_view('national', '$_', \$q\$$national_view{$_}\$q\$);\n" }
		sort keys %national_view) . q{
	SELECT stategrid_ivm.start_pipeline('national');
});
for my $p (qw(p1 p2))
{
	my $conn = $prov{$p}->connstr('postgres') =~ s/'/''/gr;
	$national->safe_psql('postgres', "CREATE SUBSCRIPTION sub_$p CONNECTION '$conn' PUBLICATION warehouse");
}

# Each province's warehouse applied up to now, shipped, then the national pipeline too.
sub catch_up
{
	for my $p (qw(p1 p2))
	{
		$prov{$p}->safe_psql('postgres', q{SELECT stategrid_ivm.sync('stategrid', '60 s')});
		$national->wait_for_subscription_sync($prov{$p}, "sub_$p");
	}
	# (the apply workers commit with synchronous_commit = off: sync() waits for those commits too)
	$national->safe_psql('postgres', q{SELECT stategrid_ivm.sync('national', '60 s')});
}
# When the national mirrors differ from the subscribed tables: the rows, and where the
# subscriptions and the national pipeline stand.
sub diag_mirrors
{
	diag 'subscribed tables against their mirrors: ' . $national->safe_psql('postgres', q{
		SELECT 'detail missing', s.* FROM (SELECT * FROM dwd_power_consumption_detail EXCEPT SELECT * FROM ods_dwd_power_consumption_detail) s
		UNION ALL
		SELECT 'detail extra', s.* FROM (SELECT * FROM ods_dwd_power_consumption_detail EXCEPT SELECT * FROM dwd_power_consumption_detail) s
		ORDER BY 2, 1 LIMIT 40});
	diag 'ranking: ' . $national->safe_psql('postgres', q{
		SELECT 'ranking missing', s.* FROM (SELECT * FROM dws_user_ranking EXCEPT SELECT * FROM ods_dws_user_ranking) s
		UNION ALL
		SELECT 'ranking extra', s.* FROM (SELECT * FROM ods_dws_user_ranking EXCEPT SELECT * FROM dws_user_ranking) s
		ORDER BY 2, 1 LIMIT 40});
	diag 'positions: ' . $national->safe_psql('postgres', q{
		SELECT pg_current_wal_lsn(), pg_current_wal_flush_lsn();
		SELECT name, state, applied_lsn, lag_bytes, last_error FROM stategrid_ivm.pipelines;
		SELECT subname, received_lsn, latest_end_lsn FROM pg_stat_subscription;
		SELECT * FROM pg_replication_origin_status});
	# the commits since the national pipeline's last applied one, with their origins, and the
	# transactions that wrote the rows its detail mirror lacks
	my $from = $national->safe_psql('postgres', q{SELECT applied_lsn FROM stategrid_ivm.pipelines WHERE name = 'national'});
	diag 'xmin of the missing detail rows: ' . $national->safe_psql('postgres', q{
		SELECT string_agg(DISTINCT d.xmin::text, ', ') FROM dwd_power_consumption_detail d
		WHERE NOT EXISTS (SELECT 1 FROM ods_dwd_power_consumption_detail o WHERE o.consumption_id = d.consumption_id)});
	my ($out, $err) = run_command(['pg_waldump', '-p', $national->data_dir . '/pg_wal', '-s', $from, '-r', 'Transaction']);
	diag "commits after $from:\n" . join("\n", grep { /COMMIT|ABORT/ } split /\n/, $out) . "\n$err";
	return;
}

catch_up();
is( $national->safe_psql('postgres', q{SELECT count(DISTINCT user_id) FROM dwd_power_user_info}),
	'300', 'the initial copies of both provinces\' warehouses arrived');
is( $national->safe_psql('postgres', q{SELECT count(*), count(DISTINCT stat_date) FROM nat_user_top100}),
	'300|3', 'the national top 100 holds 100 users on each of the 3 days');

# ---- writers in both provinces; the national cluster restarts; province 2 crashes ----------------
writers_through_failures($national, \%prov);

catch_up();
is(not_ok($prov{$_}, 'postgres', 'stategrid'), '', "verify() is clean in province $_") for qw(p1 p2);
is(not_ok($national, 'postgres', 'national'), '', 'verify() is clean on the national cluster')
  or diag_mirrors();

# ---- the national tables and views against a recomputation over the union of the provinces ------
recompute_union($national, \%prov, $schema);
$national->safe_psql('recompute', q{
	SET search_path = union_of_provinces;
	CREATE VIEW ods_dwd_power_consumption_detail AS SELECT * FROM dwd_power_consumption_detail;
	CREATE VIEW ods_dws_user_ranking AS SELECT * FROM dws_user_ranking;
} . join('', map { "CREATE VIEW $_ AS $national_view{$_};\n" } sort keys %national_view));

my $dws = dws_text($national, 'postgres', 'public');
is($dws, dws_text($national, 'recompute', 'union_of_provinces'),
	'the subscribed DWS equal a recomputation over the union of both provinces');
like($dws, qr/^region\|11\|.*^region\|35\|/ms, 'with the regions of both provinces');
for my $v (sort keys %national_view)
{
	my $got = $national->safe_psql('postgres', sprintf($view_text{$v}, 'public'));
	is($got, $national->safe_psql('recompute', sprintf($view_text{$v}, 'union_of_provinces')),
		"the national view $v equals a recomputation over the union of both provinces");
}
like( $national->safe_psql('postgres', q{SELECT string_agg(DISTINCT region_id::text, ' ') FROM nat_user_top100}),
	qr/\b1\d\b.*\b3\d\b/, 'the national top 100 ranks users of both provinces');
my ($rc, $out, $err) = $national->psql('postgres', q{DELETE FROM dws_region_daily_stats WHERE region_id = 11});
like($err, qr/DELETE of table public\.dws_region_daily_stats refused: it is maintained by stategrid_ivm pipeline "stategrid"/,
	'the guard trigger that came with the dump refuses a local write to a national copy');

# ---- overlapping regions: province 2 writes into province 1's region ------------------------------
# (a user of province 2's key range in region 11, with a reading on a day that region 11 has)
my $region_row = q{SELECT total_consumption FROM dws_region_daily_stats
	WHERE region_id = 11 AND region_name = 'region 11' AND stat_date = '2024-03-01'};
my $p1_total = $prov{p1}->safe_psql('postgres', $region_row);
isnt($p1_total, '', 'province 1 has a DWS row for region 11 on 2024-03-01');
my $offset = -s $national->logfile;
$prov{p2}->safe_psql('postgres', q{
	BEGIN;
	INSERT INTO power_user (user_id, user_name, usage_type, region_id, region_name)
	VALUES (2999999, 'in province 1''s region', '居民', 11, 'region 11');
	INSERT INTO power_consumption (user_id, consumption_amount, consumption_cost, consumption_date,
	                               meter_reading_before, meter_reading_after)
	VALUES (2999999, 1000.00, 560.00, '2024-03-01 10:00', 0, 1000.00);
	COMMIT;
	SELECT stategrid_ivm.sync('stategrid', '60 s');
});
$national->wait_for_log(qr/duplicate key value violates unique constraint "sgivm_k_\d+_0"/, $offset);
my $log = slurp_file($national->logfile, $offset);
like( $log, qr/Key \(region_id, region_name, stat_date\)=\(11, region 11, 2024-03-01\) already exists/,
	'a region-day of province 1 written by province 2: the national apply fails on the DWS key');
ok( wait_for($national, 'postgres', q{SELECT apply_error_count > 0 FROM pg_stat_subscription_stats WHERE subname = 'sub_p2'}),
	'pg_stat_subscription_stats counts the failure');
$prov{p2}->safe_psql('postgres', q{UPDATE power_user SET address = 'after the collision' WHERE user_id = 2000001});
sleep 2;
is( $national->safe_psql('postgres', $region_row . q{;
	SELECT count(*) FROM dwd_power_user_info WHERE user_id = 2999999 OR address = 'after the collision'}),
	"$p1_total\n0",
	"the national row stays province 1's, and province 2's later transactions wait behind the failed one");

my ($finish) = $log =~ /in transaction \d+, finished at ([0-9A-F]+\/[0-9A-F]+)/;
ok(defined $finish, 'the log names the failed transaction\'s finish LSN') or diag $log;
$national->safe_psql('postgres', "ALTER SUBSCRIPTION sub_p2 SKIP (lsn = '$finish')");
$prov{p2}->safe_psql('postgres', q{
	INSERT INTO power_consumption (user_id, consumption_amount, consumption_cost, consumption_date,
	                               meter_reading_before, meter_reading_after)
	VALUES (2999999, 1.00, 0.56, '2024-03-01 11:00', 0, 1.00);
});
catch_up();
is($national->safe_psql('postgres', $region_row), '1001.00',
	'skipped, province 2\'s next change of the shared region-day overwrites province 1\'s aggregate with its own part');
is(not_ok($national, 'postgres', 'national'), '', 'the national pipeline follows its tables: verify() is clean')
  or diag_mirrors();

$national->stop;
$prov{$_}->stop for qw(p1 p2);
done_testing();
