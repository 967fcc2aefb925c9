# What the TAP tests of test/t/ share: where the repository's files are, and a cluster set up
# for the extension. prove runs with -I . from test/ (scripts/test.sh), so `use SgivmTap;` finds it.
package SgivmTap;

use strict;
use warnings;

use Exporter 'import';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;

our @EXPORT = qw(source_path source_file stategrid_node);

# scripts/test.sh runs the tests from a copy with examples/ next to test/ (SGIVM_SRCDIR); run by
# hand from test/, the repository is the parent directory.
sub source_path
{
	my ($relative) = @_;
	my $dir = $ENV{SGIVM_SRCDIR};
	$dir = "$ENV{TESTDIR}/.." if !defined $dir && defined $ENV{TESTDIR};
	$dir = '..' unless defined $dir;
	my $path = "$dir/$relative";
	die "cannot read $path" unless -r $path;
	return $path;
}

# The text of a file of the repository, e.g. source_file('examples/stategrid/schema.sql').
sub source_file
{
	return slurp_file(source_path($_[0]));
}

# A started cluster with logical WAL and the extension preloaded (the settings scripts/test.sh
# also writes to TEMP_CONFIG, so a test runs the same by hand), then the test's own settings.
#   conf       => lines for postgresql.conf after the extension's
#   initdb     => [ extra initdb arguments ]
sub stategrid_node
{
	my ($name, %opt) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(allows_streaming => 'logical', $opt{initdb} ? (extra => $opt{initdb}) : ());
	$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'stategrid_ivm'
output_plugin_libraries = 'pgoutput, test_decoding, stategrid_ivm'
max_replication_slots = 10
max_worker_processes = 16
} . ($opt{conf} // ''));
	$node->start;
	return $node;
}

1;
