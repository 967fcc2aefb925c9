# Exactly once when the worker is told to exit (as a fast shutdown or pg_terminate_backend
# does) while its apply transaction commits: after it has set the replication origin's
# progress for the batch, before the commit. The transaction aborts; the worker's exit then
# commits once more (the drop of its temporary tables). That commit must not carry the
# aborted batch's progress, or the restarted worker skips the batch's source transactions as
# applied: rows lost for good, found by a fast restart under writers (issue 17's roll-up test).
# The exit point stategrid_ivm.debug_crash_at = 'exit_before_commit' stops the worker there.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SgivmTap;

my $node = stategrid_node('exit_before_commit', conf => "log_min_messages = warning\n");
$node->safe_psql('postgres', "CREATE EXTENSION stategrid_ivm;\n" . source_file('examples/stategrid/schema.sql') . q{
	SELECT stategrid_ivm.generate_sample_data(users => 20, days => 1);
	SELECT stategrid_ivm.create_stategrid_pipeline();
	SELECT stategrid_ivm.sync('stategrid', '60 s');
});

my $offset = -s $node->logfile;
$node->safe_psql('postgres', q{ALTER SYSTEM SET stategrid_ivm.debug_crash_at = 'exit_before_commit'; SELECT pg_reload_conf()});
sleep 1;    # (the worker reads the setting when it next wakes: the reload wakes it)
$node->safe_psql('postgres', q{
	INSERT INTO power_consumption (consumption_id, user_id, consumption_amount, consumption_cost, consumption_date,
	                               meter_reading_before, meter_reading_after)
	SELECT 900000 + i, (SELECT min(user_id) FROM power_user), 1.00, 0.56, timestamp '2024-06-01 08:00', 0, 1.00
	FROM generate_series(1, 5) i;
});
$node->wait_for_log(qr/exit point "exit_before_commit" reached/, $offset);
pass('the worker exited between setting the batch\'s origin progress and its commit');
$node->safe_psql('postgres', q{ALTER SYSTEM RESET stategrid_ivm.debug_crash_at; SELECT pg_reload_conf()});

# The launcher starts a new worker; it must apply the batch again.
my $synced;
for (1 .. 60)
{
	my ($rc) = $node->psql('postgres', q{SELECT stategrid_ivm.sync('stategrid', '5 s')});
	if ($rc == 0) { $synced = 1; last; }
	sleep 1;
}
ok($synced, 'the pipeline caught up after the exit');
is($node->safe_psql('postgres', q{SELECT count(*) FROM ods_power_consumption WHERE consumption_id > 900000}),
	'5', 'the five readings of the batch that did not commit are in the ODS mirror');
is( $node->safe_psql('postgres', q{
	SELECT coalesce(string_agg(format('%s (missing %s, extra %s)', view_name, missing_rows, extra_rows), '; '), '')
	FROM stategrid_ivm.verify('stategrid') WHERE ok IS NOT TRUE}),
	'', 'verify() is clean');

$node->stop;
done_testing();
