# Failover of a warehouse server to its physical standby (issue 17, deliverable 3).
#
# PostgreSQL 15 keeps replication slots out of base backups and does not replicate them, so the
# promoted standby has the warehouse's tables and catalog (as of its replay point) but not the
# pipeline's slot. The launcher of the promoted server puts the pipeline in error with the one
# step that brings it back, rebuild_pipeline(), which gives it a new slot and recomputes the
# warehouse from the sources as the promoted server has them.
#
# Under a writer on the primary: the standby is promoted while the primary is stopped with
# -m immediate; the pipeline shows the error naming the promotion and the step; a writer goes on
# on the promoted server; the step; then nothing lost and nothing doubled: verify() is clean,
# the DWS equal a recomputation by plain views over the promoted server's sources, and new
# changes flow. The time from promotion to a caught-up pipeline is printed.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SgivmTap;
use SgivmScale;
use Time::HiRes qw(time);

my $primary = stategrid_node('failover_primary', conf => "log_min_messages = warning\n");
$primary->safe_psql('postgres', "CREATE EXTENSION stategrid_ivm;\n" . source_file('examples/stategrid/schema.sql')
	  . writer_sql(1_000_000, 11) . q{
CALL sg_write(200, 60);
SELECT stategrid_ivm.create_stategrid_pipeline();
});
$primary->safe_psql('postgres', q{SELECT stategrid_ivm.sync('stategrid')});

$primary->backup('bk');
my $standby = PostgreSQL::Test::Cluster->new('failover_standby');
$standby->init_from_backup($primary, 'bk', has_streaming => 1);
$standby->start;

# ---- the primary under a writer, then gone ------------------------------------------------------
my $writer = start_writer($primary, 60);
sleep 3;
$primary->wait_for_catchup($standby);    # (the writer goes on: some of it is lost with the primary)
sleep 1;
$primary->stop('immediate');
stop_writer($writer, 1);

my $t0 = time();
$standby->promote;
my $promoted = $standby;
my $users_at_promotion = $promoted->safe_psql('postgres', q{SELECT count(*) FROM power_user});
cmp_ok($users_at_promotion, '>', 200, "the promoted server has the primary's writes ($users_at_promotion users)");

# The promoted server's launcher finds the pipeline without its slot: error, naming the step.
ok( wait_for($promoted, 'postgres', q{SELECT state = 'error' FROM stategrid_ivm.pipelines WHERE name = 'stategrid'}),
	'after promotion the pipeline, whose slot stayed behind, is in error');
like(
	$promoted->safe_psql('postgres', q{SELECT last_error FROM stategrid_ivm.pipelines WHERE name = 'stategrid'}),
	qr/does not exist \(.*promoted standby.*\): rebuild the pipeline with SELECT stategrid_ivm\.rebuild_pipeline\('stategrid'\)/,
	'the error says a promoted standby has no slot and names the step');

# ---- the writer goes on on the promoted server; the step ---------------------------------------
$writer = start_writer($promoted, 60);
$promoted->safe_psql('postgres', q{SELECT stategrid_ivm.rebuild_pipeline('stategrid')})
  unless $ENV{SGIVM_FAILOVER_SKIP_STEP};    # (to see this test fail without the step)
ok( wait_for($promoted, 'postgres', q{
		SELECT state = 'running' AND applied_lsn IS NOT NULL AND lag_bytes < 1024 * 1024
		FROM stategrid_ivm.pipelines WHERE name = 'stategrid'}, 60),
	'the pipeline runs again and has caught up with the writer');
my $recovery = time() - $t0;
note sprintf('failover: promotion to a caught-up pipeline took %.1f s (%d source rows)', $recovery,
	$promoted->safe_psql('postgres', q{SELECT (SELECT count(*) FROM power_user) + (SELECT count(*) FROM power_consumption)}));
sleep 2;
my $committed = stop_writer($writer);
cmp_ok($committed, '>', 0, "the writer committed $committed transactions on the promoted server");

# ---- nothing lost, nothing doubled ---------------------------------------------------------------
$promoted->safe_psql('postgres', q{SELECT stategrid_ivm.sync('stategrid', '60 s')});
is(not_ok($promoted, 'postgres', 'stategrid'), '', 'verify() is clean on the promoted server');
recompute_views($promoted, 'postgres', 'recompute', 'public.power_user', 'public.power_consumption', 'postgres');
my $dws = dws_text($promoted, 'postgres', 'public');
is($dws, dws_text($promoted, 'postgres', 'recompute'), 'the DWS equal a recomputation over the sources');

# New changes flow.
$promoted->safe_psql('postgres', q{CALL sg_write(20, 60)});
$promoted->safe_psql('postgres', q{SELECT stategrid_ivm.sync('stategrid', '60 s')});
is(dws_text($promoted, 'postgres', 'public'), dws_text($promoted, 'postgres', 'recompute'),
	'and after more writes on the promoted server');

$promoted->stop;
done_testing();
