# Randomized test of a partitioned source (issue 13, "Done when"): the State Grid warehouse
# (create_stategrid_pipeline) over a power_consumption partitioned by month, while a seeded
# random workload inserts, updates and deletes readings, moves readings between months (and so
# between partitions) by date updates, moves users between regions, and, mid-run, gets a new
# monthly partition (CREATE TABLE ... PARTITION OF) and a month loaded apart and attached
# (ATTACH PARTITION, which makes the pipeline copy its sources again). After each quarter of
# the run and at the end: sync(), then verify() must report every table ok.
#
# Reproducible: the workload depends on the seed only (SGIVM_TAP_SEED repeats it);
# SGIVM_PARTITIONED_OPS sets its size (default 1200).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SgivmTap;
use Time::HiRes qw(time);

my $seed = $ENV{SGIVM_TAP_SEED} // int(time() * 1000) % 1000000;
srand($seed);
diag "random seed $seed (set SGIVM_TAP_SEED=$seed to repeat)";
my $t0 = time();
my $ops_target = $ENV{SGIVM_PARTITIONED_OPS} // 1200;

my $node = stategrid_node('partitioned_random', conf => q{
log_min_messages = warning
log_statement = none
});

$node->safe_psql('postgres', q{
CREATE EXTENSION stategrid_ivm;
CREATE TABLE power_user (
    user_id bigint PRIMARY KEY, user_name varchar(100), usage_type varchar(50), region_id int,
    region_name varchar(100), address varchar(200), phone varchar(20),
    create_time timestamp DEFAULT now(), update_time timestamp DEFAULT now());
CREATE TABLE power_consumption (
    consumption_id bigint NOT NULL, user_id bigint, consumption_amount decimal(10,2),
    consumption_cost decimal(10,2), consumption_date timestamp NOT NULL,
    meter_reading_before decimal(10,2), meter_reading_after decimal(10,2), remark varchar(200),
    PRIMARY KEY (consumption_id, consumption_date)
) PARTITION BY RANGE (consumption_date);
DO $$
BEGIN
    FOR m IN 1 .. 6 LOOP
        EXECUTE format('CREATE TABLE pc_2024_%s PARTITION OF power_consumption FOR VALUES FROM (%L) TO (%L)',
                       lpad(m::text, 2, '0'), make_date(2024, m, 1), make_date(2024, m, 1) + interval '1 month');
    END LOOP;
END
$$;
INSERT INTO power_user (user_id, user_name, usage_type, region_id, region_name)
SELECT u, 'user ' || u, (ARRAY['居民', '商业', '工业'])[1 + u % 3], 1 + u % 4, 'region ' || (1 + u % 4)
FROM generate_series(1, 30) u;
INSERT INTO power_consumption (consumption_id, user_id, consumption_amount, consumption_cost, consumption_date)
SELECT i, 1 + i % 30, (i % 97) * 1.25, (i % 89) * 0.5, timestamp '2024-01-01' + (i % 180) * interval '1 day'
FROM generate_series(1, 600) i;
SELECT stategrid_ivm.create_stategrid_pipeline('grid');
});

my $months = 6;           # partitions 2024-01 .. 2024-$months
my $next_reading = 1000;
my $next_user = 100;

sub random_date
{
	my $m = 1 + int(rand($months));
	return sprintf("'2024-%02d-%02d %02d:00'", $m, 1 + int(rand(28)), int(rand(24)));
}

sub random_statement
{
	my $r = rand();
	my $id = 1 + int(rand($next_reading));
	if ($r < 0.30)
	{
		my $u = 1 + int(rand($next_user + 5));    # now and then a user that does not exist
		return sprintf("INSERT INTO power_consumption (consumption_id, user_id, consumption_amount, consumption_cost,"
			  . " consumption_date) VALUES (%d, %d, %.2f, %.2f, %s)",
			$next_reading++, $u, rand(500), rand(300), random_date());
	}
	return sprintf("UPDATE power_consumption SET consumption_amount = %.2f WHERE consumption_id = %d", rand(500), $id)
	  if $r < 0.45;
	# a reading moves to another day, often another month: another partition
	return "UPDATE power_consumption SET consumption_date = " . random_date() . " WHERE consumption_id = $id"
	  if $r < 0.65;
	return "DELETE FROM power_consumption WHERE consumption_id = $id" if $r < 0.78;
	if ($r < 0.90)
	{
		my $region = 1 + int(rand(5));
		return sprintf("UPDATE power_user SET region_id = %d, region_name = 'region %d' WHERE user_id = %d",
			$region, $region, 1 + int(rand($next_user)));
	}
	return sprintf("UPDATE power_consumption SET user_id = %d WHERE consumption_id = %d", 1 + int(rand($next_user)), $id)
	  if $r < 0.95;
	return sprintf("INSERT INTO power_user (user_id, user_name, usage_type, region_id, region_name)"
		  . " VALUES (%d, 'user %d', '居民', 2, 'region 2')", $next_user, $next_user++);
}

sub check_warehouse
{
	my ($what) = @_;
	$node->safe_psql('postgres', "SELECT stategrid_ivm.sync('grid', '120 s')");
	my $bad = $node->safe_psql('postgres',
		"SELECT string_agg(format('%s (missing %s, extra %s)', view_name, missing_rows, extra_rows), ', ')"
		  . " FROM stategrid_ivm.verify('grid') WHERE NOT ok");
	is($bad, '', "$what: every table equals its recomputation after sync");
}

check_warehouse('after the backfill of six partitions');

my $ops = 0;
my $quarter = 1;
while ($ops < $ops_target)
{
	my @stmts = map { random_statement() } 1 .. (1 + int(rand(8)));
	$ops += @stmts;
	$node->safe_psql('postgres', join(";\n", 'BEGIN', @stmts, 'COMMIT'));
	if ($ops >= $quarter * $ops_target / 4)
	{
		if ($quarter == 1)
		{
			# a month created while the pipeline runs: followed without a new copy
			$node->safe_psql('postgres', "CREATE TABLE pc_2024_07 PARTITION OF power_consumption"
				  . " FOR VALUES FROM ('2024-07-01') TO ('2024-08-01')");
			$months = 7;
		}
		elsif ($quarter == 2)
		{
			# a month loaded apart, then attached with its rows
			$node->safe_psql('postgres', qq{
CREATE TABLE pc_2024_08 (LIKE power_consumption INCLUDING ALL);
INSERT INTO pc_2024_08 (consumption_id, user_id, consumption_amount, consumption_cost, consumption_date)
SELECT $next_reading + i, 1 + i % 30, i, i / 2.0, timestamp '2024-08-01' + i * interval '5 hours'
FROM generate_series(1, 50) i;
ALTER TABLE power_consumption ATTACH PARTITION pc_2024_08 FOR VALUES FROM ('2024-08-01') TO ('2024-09-01');
});
			$next_reading += 51;
			$months = 8;
		}
		check_warehouse("after $ops operations");
		$quarter++;
	}
}
check_warehouse("at the end, $ops operations");

my $spread = $node->safe_psql('postgres',
	"SELECT count(DISTINCT tableoid) FROM power_consumption WHERE consumption_date >= '2024-07-01'");
is($spread, '2', 'the months created and attached mid-run hold readings');
is($node->safe_psql('postgres', "SELECT state FROM stategrid_ivm.pipelines WHERE name = 'grid'"),
	'running', 'the pipeline runs');

$node->safe_psql('postgres', "SELECT stategrid_ivm.drop_pipeline('grid', true)");
$node->stop;
note sprintf('%.1f s', time() - $t0);
done_testing();
