# Disk full (issue 13, item 8; DESIGN.md §2 invariants 2, 4 and 6): the warehouse's own tables
# run out of space while the sources, on another disk, keep taking writes.
#
# The ODS mirrors and the DWD/DWS views (tables and indexes) are created in a tablespace on a
# small tmpfs (default_tablespace while create_stategrid_pipeline creates them); the sources,
# the WAL and the worker's temporary working tables (temp_tablespaces is empty: the database's
# default tablespace) stay on the normal disk. A ballast file leaves about 1 MB free on the
# tmpfs; then a writer commits source transactions one after the other until the pipeline is in
# error.
#
# 1. The warehouse fills the disk (the mirrors, written first in a batch, in practice). Asserted:
#    the pipeline goes to `error`, and last_error gives the cause, names the table (or index)
#    whose file could not be extended and its tablespace, and says it retries by itself; the
#    writer's commits keep succeeding while it fails; nothing of a failed batch is applied (the
#    mirror holds a prefix of the source transactions, each whole); WAL is retained: the slot's
#    confirmed position is not past the commit of the first unapplied transaction, its restart
#    point not past that transaction's first record (both found with pg_walinspect), neither
#    moves while the pipeline fails, and the WAL file of the restart point is still there after
#    checkpoints. Then the ballast is removed, and nothing else done (no resume_pipeline).
# 2. The mirrors are moved to pg_default and the disk filled again: now a view's table fills it
#    in the middle of a batch whose mirrors were written, and last_error names the view being
#    maintained too. Then every table and index is moved off the small disk (ALTER TABLE/INDEX
#    ALL IN TABLESPACE), the ballast left where it is.
# After each, the pipeline catches up by itself: after sync(), verify() is clean, each mirror
# equals its source exactly (EXCEPT ALL both ways, counts), and the detail's counts and sums and
# the daily totals equal the source's: nothing lost, nothing doubled.
#
# Mounting needs root, and the TAP tests run as the cluster owner: scripts/test.sh (run as
# root) mounts a tmpfs owned by postgres and passes its path in SGIVM_TMPFS. Without it the
# test mounts its own with `sudo -n` if it may, or skips saying why.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use File::Path qw(make_path remove_tree);
use SgivmTap;

my $t0 = time();

# ---- the small disk ---------------------------------------------------------------------------
my ($disk, $own_mount);
if ($ENV{SGIVM_TMPFS})
{
	$disk = $ENV{SGIVM_TMPFS};
}
elsif (system('sudo -n true >/dev/null 2>&1') == 0)
{
	$disk = PostgreSQL::Test::Utils::tempdir('tmpfs');
	if (system('sudo', '-n', 'mount', '-t', 'tmpfs', '-o', "size=32m,uid=$<,gid=" . (0 + $() . ',mode=0700',
			'tmpfs', $disk) == 0)
	{
		$own_mount = $disk;
	}
	else
	{
		plan skip_all => "sudo -n mount -t tmpfs failed: cannot make a small disk to fill";
	}
}
else
{
	plan skip_all => 'no small disk to fill: SGIVM_TMPFS is not set ('
	  . ($ENV{SGIVM_TMPFS_WHY} // 'scripts/test.sh mounts a tmpfs there when run as root')
	  . ') and sudo -n is not allowed';
}
END { system('sudo', '-n', 'umount', $own_mount) if $own_mount; }

# Free bytes on the small disk.
sub disk_free
{
	my $out = `df -Pk '$disk'`;
	my @f = split /\s+/, (split /\n/, $out)[1] // '';
	die "cannot read the free space of $disk: $out" unless defined $f[3] && $f[3] =~ /^\d+$/;
	return $f[3] * 1024;
}
plan skip_all => "$disk has more than 512 MB free: not a small tmpfs (SGIVM_TMPFS)" if disk_free() > 512 * 1024 * 1024;

my $tsdir = "$disk/ts_$$";
my $ballast = "$disk/ballast_$$";
remove_tree($tsdir);
make_path($tsdir);
chmod 0700, $tsdir;
END { unlink $ballast if $ballast; }

my $node = stategrid_node('disk_full', conf => q{
log_min_messages = warning
log_statement = none
});

# ---- the warehouse in the small tablespace -----------------------------------------------------
my $users = 200;
$node->safe_psql('postgres', "CREATE EXTENSION stategrid_ivm;\nCREATE EXTENSION pg_walinspect;\n"
	  . source_file('examples/stategrid/schema.sql') . qq{
CREATE TABLESPACE small LOCATION '$tsdir';
SELECT stategrid_ivm.generate_sample_data($users, 5, 2);
SET default_tablespace = small;
SELECT stategrid_ivm.create_stategrid_pipeline();
});
$node->safe_psql('postgres', q{SELECT stategrid_ivm.sync('stategrid', '60 s')});

# The pipeline's tables (mirrors and views) and their indexes: all in the small tablespace; the
# sources not.
my $placement = $node->safe_psql('postgres', q{
	WITH t AS (SELECT ods_relid AS rel FROM stategrid_ivm.source UNION ALL SELECT relid FROM stategrid_ivm.view),
	r AS (SELECT rel FROM t UNION ALL SELECT indexrelid FROM pg_index JOIN t ON indrelid = rel)
	SELECT count(*) || ' ' || count(*) FILTER (WHERE c.reltablespace = (SELECT oid FROM pg_tablespace WHERE spcname = 'small'))
	FROM r JOIN pg_class c ON c.oid = r.rel});
my ($nrel, $nsmall) = split / /, $placement;
cmp_ok($nrel, '>=', 12, "the warehouse has $nrel tables and indexes");
is($nsmall, $nrel, 'all of them are in the small tablespace');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_class WHERE relname IN ('power_user', 'power_consumption') AND reltablespace <> 0}),
	'0', 'the sources are on the normal disk');

# Leaves about 1 MB free on the small disk (a few of the writer's transactions fill it).
sub fill_disk
{
	my $size = disk_free() - 1024 * 1024;
	open my $b, '>>', $ballast or die "cannot write $ballast: $!";
	binmode $b;
	my $mb = "\0" x (1024 * 1024);
	while ($size > 0)
	{
		my $n = $size < length($mb) ? $size : length($mb);
		print $b substr($mb, 0, $n) or die "cannot write $ballast: $!";
		$size -= $n;
	}
	close $b or die "cannot write $ballast: $!";
	note sprintf('ballast of %.1f MB, %.0f kB left free', (-s $ballast) / 1048576, disk_free() / 1024);
}

# ---- the writer -------------------------------------------------------------------------------
# Transaction $i: 300 readings tagged 'disk $i', and a correction of an older reading. Records
# its xid and the WAL insert position after its commit.
my $rows = 300;
my @txn;    # [xid, lsn after commit]
my $i = 0;
sub write_txn
{
	$i++;
	my $out = $node->safe_psql('postgres', qq{
BEGIN;
INSERT INTO power_consumption (user_id, consumption_amount, consumption_cost, consumption_date,
                               meter_reading_before, meter_reading_after, remark)
SELECT 1 + (g * 7 + $i) % $users, ((g * 13 + $i) % 1000) / 10.0, ((g * 13 + $i) % 1000) / 20.0,
       date '2024-01-15' + (g + $i) % 5, 100, 100 + ((g * 13 + $i) % 1000) / 10.0, 'disk $i'
FROM generate_series(1, $rows) g;
UPDATE power_consumption SET consumption_amount = consumption_amount + 1, meter_reading_after = meter_reading_after + 1
WHERE consumption_id = (SELECT min(consumption_id) + $i FROM power_consumption);
SELECT pg_current_xact_id();
COMMIT;
SELECT pg_current_wal_insert_lsn();
});
	my ($xid, $lsn) = split /\n/, $out;
	$txn[$i] = [ $xid, $lsn ];
}

sub pipeline_state
{
	return split /\|/, $node->safe_psql('postgres',
		q{SELECT state || '|' || coalesce(last_error, '') FROM stategrid_ivm.pipelines WHERE name = 'stategrid'}), 2;
}

# Commits until the pipeline is in error (at most 60 s); returns its last_error.
sub write_until_error
{
	my ($what) = @_;
	my ($state, $error) = ('', '');
	my $deadline = time() + 60;
	while (time() < $deadline)
	{
		write_txn();
		($state, $error) = pipeline_state();
		last if $state eq 'error';
		usleep(100_000);
	}
	note sprintf('%d source transactions written when the pipeline stopped, at %.1f s', $i, time() - $t0);
	is($state, 'error', "$what: the pipeline is in error once its tablespace is full")
	  or BAIL_OUT("no error after $i transactions; last_error: $error; free: " . disk_free());
	like($error, qr/could not extend file "[^"]+": (No space left on device|wrote only)/, "$what: last_error gives the cause: $error");
	return $error;
}

# Waits until the pipeline runs again by itself, adds a few transactions, and checks that
# the warehouse is what the sources say: nothing lost, nothing doubled.
sub check_caught_up
{
	my ($what) = @_;
	my $since = time();
	ok($node->poll_query_until('postgres',
			q{SELECT state = 'running' FROM stategrid_ivm.pipelines WHERE name = 'stategrid'}),
		"$what: the pipeline runs again, without being resumed");
	note sprintf('running again %.1f s later', time() - $since);
	write_txn() for 1 .. 3;
	my ($rc, $out, $err) = $node->psql('postgres', q{SELECT stategrid_ivm.sync('stategrid', '60 s')});
	is($rc, 0, "$what: sync() returns, the backlog is applied") or diag $err;
	is($node->safe_psql('postgres', q{SELECT count(*) FROM power_consumption WHERE remark LIKE 'disk %'}),
		$i * $rows, "$what: every reading the writer committed is in the source");
	for my $pair ([ 'power_user', 'ods_power_user' ], [ 'power_consumption', 'ods_power_consumption' ])
	{
		my ($src, $ods) = @$pair;
		is($node->safe_psql('postgres', qq{
			SELECT (SELECT count(*) FROM (SELECT * FROM $src EXCEPT ALL SELECT * FROM $ods) a) || ' missing, '
			    || (SELECT count(*) FROM (SELECT * FROM $ods EXCEPT ALL SELECT * FROM $src) b) || ' extra, '
			    || (SELECT count(*) FROM $src) - (SELECT count(*) FROM $ods) || ' rows apart'}),
			'0 missing, 0 extra, 0 rows apart', "$what: $ods equals $src");
	}
	is($node->safe_psql('postgres', q{
		SELECT (SELECT count(*) || ' ' || sum(consumption_amount) || ' ' || sum(consumption_cost) FROM power_consumption)
		     = (SELECT count(*) || ' ' || sum(consumption_amount) || ' ' || sum(consumption_cost) FROM dwd_power_consumption_detail)
		   AND (SELECT sum(consumption_amount) || ' ' || sum(consumption_cost) FROM power_consumption)
		     = (SELECT sum(total_consumption) || ' ' || sum(total_cost) FROM dws_region_daily_stats)}),
		't', "$what: the detail and the daily totals add up to the source readings");
	is($node->safe_psql('postgres', q{
		SELECT coalesce(string_agg(view_name || ': ' || missing_rows || ' missing, ' || extra_rows || ' extra', '; '), 'clean')
		FROM stategrid_ivm.verify('stategrid') WHERE NOT ok}),
		'clean', "$what: verify(), every mirror and view equals a full recomputation");
}

# ---- 1. the warehouse fills the disk; space is freed ------------------------------------------
fill_disk();
my $error = write_until_error('disk full');
like($error, qr/\(the file of (?:table|index "\w+" of table) "(?:ods|dwd|dws)_\w+", in tablespace "small"\)/,
	'last_error names the table (or index) whose file is full, and its tablespace');
like($error, qr/the pipeline catches up by itself/, 'last_error says that the pipeline retries by itself');

my $slot_sql = q{SELECT confirmed_flush_lsn || ' ' || restart_lsn FROM pg_replication_slots
	WHERE slot_name = (SELECT slot_name FROM stategrid_ivm.pipelines WHERE name = 'stategrid')};
my $slot_at_error = $node->safe_psql('postgres', $slot_sql);

# The writer goes on: its commits succeed (safe_psql dies otherwise).
my $first_error_txn = $i;
for (1 .. 10)
{
	write_txn();
	usleep(50_000);
}
is((pipeline_state())[0], 'error', 'the pipeline is still in error');
pass(sprintf('the writer committed %d more transactions while the pipeline failed', $i - $first_error_txn));

# The mirror holds whole transactions, and only a prefix of them: nothing of a failed batch.
my %applied = map { split /\|/ } split /\n/, $node->safe_psql('postgres', q{
	SELECT substr(remark, 6)::int, count(*) FROM ods_power_consumption WHERE remark LIKE 'disk %' GROUP BY 1});
my $first_unapplied = 1;
$first_unapplied++ while $applied{$first_unapplied};
is(join(',', grep { $_ >= $first_unapplied || $applied{$_} != $rows } sort { $a <=> $b } keys %applied), '',
	'the mirror holds transactions 1 to ' . ($first_unapplied - 1) . ', each whole, and none after');
note "first unapplied transaction: $first_unapplied of $i";

# WAL is retained from before the first unapplied transaction, and the slot does not move.
$node->safe_psql('postgres', 'CHECKPOINT') for 1 .. 2;
my ($xid, $after) = @{ $txn[$first_unapplied] };
my $from = $first_unapplied > 1 ? $txn[$first_unapplied - 1][1] : '0/0';
my ($found, $confirmed_ok, $restart_ok, $file_kept, $retained) = split /\|/, $node->safe_psql('postgres', qq{
	WITH rec AS (
		SELECT min(start_lsn) AS first_lsn,
		       min(start_lsn) FILTER (WHERE resource_manager = 'Transaction' AND record_type = 'COMMIT') AS commit_lsn
		FROM pg_get_wal_records_info('$from', '$after') WHERE xid = '$xid'::xid8::text::xid),
	s AS (SELECT * FROM pg_replication_slots
	      WHERE slot_name = (SELECT slot_name FROM stategrid_ivm.pipelines WHERE name = 'stategrid'))
	SELECT rec.commit_lsn IS NOT NULL, s.confirmed_flush_lsn <= rec.commit_lsn, s.restart_lsn <= rec.first_lsn,
	       EXISTS (SELECT 1 FROM pg_ls_waldir() WHERE name = pg_walfile_name(s.restart_lsn)),
	       (SELECT retained_wal_bytes > 0 FROM stategrid_ivm.pipelines WHERE name = 'stategrid')
	FROM rec, s});
is($found, 't', 'pg_walinspect finds the commit of the first unapplied transaction');
is($confirmed_ok, 't', 'the slot is not confirmed past that commit');
is($restart_ok, 't', "the slot's restart point is not past that transaction's first record");
is($node->safe_psql('postgres', $slot_sql), $slot_at_error, 'the slot did not move while the pipeline failed');
is($file_kept, 't', "the WAL file of the slot's restart point is kept across checkpoints");
is($retained, 't', 'pipelines.retained_wal_bytes shows the retained WAL');

# Space is freed, nothing else is done.
unlink $ballast or die "cannot remove $ballast: $!";
check_caught_up('space freed');
ok($node->poll_query_until('postgres', qq{
	SELECT confirmed_flush_lsn > '$txn[$i - 1][1]' FROM pg_replication_slots
	WHERE slot_name = (SELECT slot_name FROM stategrid_ivm.pipelines WHERE name = 'stategrid')}),
	'the slot is confirmed past the applied transactions again');

# ---- 2. the views fill the disk; the tables are moved to another tablespace --------------------
# The mirrors leave the small disk: the views are what fills it now, in the middle of a batch
# whose mirrors were written. (With every index of the mirrors: the engine's own too, such as
# the join column's index of the detail view, which a batch extends while writing the mirrors.)
$node->safe_psql('postgres', q{
	ALTER TABLE ods_power_user SET TABLESPACE pg_default;
	ALTER TABLE ods_power_consumption SET TABLESPACE pg_default;
	DO $$
	DECLARE
	    i regclass;
	BEGIN
	    FOR i IN SELECT indexrelid::regclass FROM pg_index
	             WHERE indrelid IN ('ods_power_user'::regclass, 'ods_power_consumption'::regclass) LOOP
	        EXECUTE format('ALTER INDEX %s SET TABLESPACE pg_default', i);
	    END LOOP;
	END
	$$;
});
fill_disk();
$error = write_until_error('views full');
# (a view's table, or the state kept beside it: sgivm_state_<view relid>...)
like($error, qr/^maintaining view (?:public\.)?(?:dwd|dws)_\w+: could not extend file "[^"]+": .*\(the file of (?:table|index "\w+" of table) "(?:dwd_\w+|dws_\w+|sgivm_state_\d+\w*)", in tablespace "small"\)/,
	'last_error names the view being maintained and the table (or index) whose file is full');
write_txn() for 1 .. 3;
is((pipeline_state())[0], 'error', 'the pipeline is still in error');
# Moved away, with the ballast left on the small disk.
$node->safe_psql('postgres', q{
	ALTER TABLE ALL IN TABLESPACE small SET TABLESPACE pg_default;
	ALTER INDEX ALL IN TABLESPACE small SET TABLESPACE pg_default;
});
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_class WHERE reltablespace = (SELECT oid FROM pg_tablespace WHERE spcname = 'small')}),
	'0', 'nothing is left in the small tablespace');
check_caught_up('tables moved');

$node->stop;
remove_tree($tsdir);
note sprintf('test took %.1f s', time() - $t0);
done_testing();
