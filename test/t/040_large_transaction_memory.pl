# The worker's memory does not grow with the size of one source transaction (issue 6, memory).
# One source transaction of 120,000 readings (and its 1,200 users) is applied by the whole
# warehouse in one apply transaction; the worker logs, at log_min_messages = debug1, the memory
# its apply transaction holds before the commit (SPI's contexts included). It must stay small:
# the mirror flush used to leave its arrays in SPI's procedure context, about 280 bytes per row
# (34 MB here, 85 MB for 300,000 rows), until the transaction ended. Now it holds well under 1 MB.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SgivmTap;

my $schema_sql = source_file('examples/stategrid/schema.sql');

my $node = stategrid_node('bigtxn', conf => q{
log_min_messages = debug1
});

$node->safe_psql('postgres', $schema_sql);
$node->safe_psql('postgres', q{
CREATE EXTENSION stategrid_ivm;
SELECT stategrid_ivm.create_stategrid_pipeline();
SELECT stategrid_ivm.sync('stategrid');
SELECT stategrid_ivm.pause_pipeline('stategrid');
});
# one source transaction: 1,200 users with 100 readings each
$node->safe_psql('postgres', q{
SELECT stategrid_ivm.generate_sample_data(users => 1200, days => 100, start_date => '2024-01-01', seed => 0.7)});
is($node->safe_psql('postgres', q{SELECT count(*) FROM power_consumption}), '120000', 'one transaction of 120,000 readings');

my $offset = -s $node->logfile;
$node->safe_psql('postgres', q{
SELECT stategrid_ivm.resume_pipeline('stategrid');
SELECT stategrid_ivm.sync('stategrid', '120 s');
});
my $log = substr(PostgreSQL::Test::Utils::slurp_file($node->logfile), $offset);
my ($kb) = $log =~ /pipeline "stategrid": 1 transactions, 121200 rows in \d+ chunk\(s\);[^\n]*transaction memory (\d+) kB/;
ok(defined $kb, 'the worker applied the source transaction in one apply transaction and logged its memory')
  or diag(join("\n", grep { /chunk\(s\)/ } split /\n/, $log));
cmp_ok($kb // 1e9, '<', 8 * 1024, 'the apply transaction held less than 8 MB (with the leak: 34 MB)');
note "transaction memory: " . ($kb // 'not logged') . " kB";

is($node->safe_psql('postgres', q{SELECT count(*) FROM stategrid_ivm.verify('stategrid') WHERE NOT ok}), '0',
	'verify() is clean');

$node->stop;
done_testing();
