# The change stream read by pg_recvlogical, the client a user points at a slot: the text form
# keeps one message on one line whatever the values hold (newlines, tabs, backslashes, other
# control characters are escaped, docs/change-format.md §6), the escaped values read back as the
# stored ones, and option errors reach pg_recvlogical's stderr saying what is wrong.
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SgivmTap;

my $node = stategrid_node('recvlogical');
$node->safe_psql('postgres', q{
CREATE TABLE notes (id int PRIMARY KEY, body text, label varchar(40), tags text[], U&"two\000Alines" text);
});

# pg_recvlogical with the given arguments: (exit status, stdout, stderr), never looping on errors.
sub recvlogical
{
	my @cmd = ($node->installed_command('pg_recvlogical'),
		'--dbname', $node->connstr('postgres'), '--no-loop', @_);
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(\@cmd, '>', \$out, '2>', \$err,
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
	# (a timeout is a failure of the assertions that follow, not the end of the test)
	return (eval { $h->finish; 1 } ? $? >> 8 : ($h->kill_kill, -1)[1], $out, $err);
}

my ($rc, $out, $err) = recvlogical('--slot', 'recv', '--create-slot', '--plugin', 'stategrid_ivm');
is($rc, 0, 'pg_recvlogical creates a slot with the plugin') or diag($err);

# Values that hold every kind of character that used to break a line or hide a byte.
my @bodies = (
	"first line\nsecond line",
	"cr\r\nlf",
	"tab\there",
	"back\\slash, \\n is not a newline, trailing \\",
	"quote ' and ''",
	"controls \x01 \x08 \x0b \x0c \x1b \x1f \x7f",
	"\n",
	"",
	"电力 \\x41 \t 用户",);
my $values = join(",\n",
	map { sprintf("(%d, %s, %s, ARRAY[%s, 'plain'], %s)",
			$_ + 1, quote($bodies[$_]), quote(substr($bodies[$_], 0, 40)), quote($bodies[$_]), quote("x\ny$_")) }
	  0 .. $#bodies);
$node->safe_psql('postgres', "INSERT INTO notes VALUES $values;");
$node->safe_psql('postgres', q{UPDATE notes SET body = E'after\nupdate\\\\' WHERE id = 1});
my $endpos = $node->safe_psql('postgres', 'SELECT pg_current_wal_insert_lsn()');

($rc, $out, $err) = recvlogical('--slot', 'recv', '--start', '--endpos', $endpos, '-f', '-',
	'-o', 'format=text', '-o', 'tables=notes');
is($rc, 0, 'pg_recvlogical streams the text format') or diag($err);

my @lines = split /\n/, $out, -1;
is(pop @lines, '', 'the output ends with a newline');
my @rows = grep { /^table / } @lines;
is(scalar @lines, 4 + scalar @rows, 'two transactions: BEGIN, rows, COMMIT');
is(scalar @rows, scalar @bodies + 1, 'one line per row message');
is(scalar(grep { /^(BEGIN|table public\.notes: (INSERT|UPDATE): |COMMIT)/ } @lines),
	scalar @lines, 'every line is a whole message');
is(scalar(grep { /[\x00-\x1f\x7f]/ } @lines), 0, 'no line holds a control character');
like($rows[0], qr/ two\\nlines:'x\\ny0'$/, 'a column name with a newline is escaped too');

# The escaped values read back as what the table holds (compared as bytes, in hex).
my %stored = map { split /\|/, $_, -1 } split /\n/, $node->safe_psql('postgres', q{
SELECT id, encode(convert_to(body, 'UTF8'), 'hex') FROM notes});
my %seen;
foreach my $line (@rows)
{
	my %v = row_values($line);
	$seen{ $v{id} // '?' } = $v{body} // '' if $line =~ /^table public\.notes: (INSERT|UPDATE):/;
	is($v{tags}, array_text($v{body}), "row $v{id}: the array value reads back too")
	  if $line =~ /^table public\.notes: INSERT:/;
}
is_deeply(
	{ map { $_ => unpack('H*', $seen{$_}) } keys %seen },
	\%stored, 'each value read back from its line is the stored value, byte for byte');

# The options: mistakes are errors that pg_recvlogical shows, not an empty stream.
($rc, $out, $err) = recvlogical('--slot', 'recv', '--start', '--endpos', $endpos, '-f', '-',
	'-o', 'format=text', '-o', 'tables=');
isnt($rc, 0, 'tables= with an empty value fails');
like($err, qr/empty list for option "tables" of output plugin stategrid_ivm/, '... naming the option');
is($out, '', '... before anything is streamed');

($rc, $out, $err) = recvlogical('--slot', 'recv', '--start', '--endpos', $endpos, '-f', '-',
	'-o', 'relids=');
isnt($rc, 0, 'relids= with an empty value fails');
like($err, qr/empty list for option "relids"/, '... naming the option');

($rc, $out, $err) = recvlogical('--slot', 'recv', '--start', '--endpos', $endpos, '-f', '-',
	'-o', 'format');
isnt($rc, 0, 'format without a value fails');
like($err, qr/option "format" of output plugin stategrid_ivm needs a value/, '... saying it needs one');
like($err, qr/HINT:  Use 'binary' or 'text'\./, '... and which values there are');
unlike($err, qr/\(null\)/, '... without "(null)"');

foreach my $name ('tables', 'relids', 'skip-origin')
{
	($rc, $out, $err) = recvlogical('--slot', 'recv', '--start', '--endpos', $endpos, '-f', '-',
		'-o', 'format=text', '-o', $name);
	like($err, qr/option "\Q$name\E" of output plugin stategrid_ivm needs a value/,
		"$name without a value says it needs one");
}

($rc, $out, $err) = recvlogical('--slot', 'recv', '--drop-slot');
is($rc, 0, 'pg_recvlogical drops the slot') or diag($err);

done_testing();

# An SQL literal of a Perl string (E'' with every byte above the printable range escaped).
sub quote
{
	my ($s) = @_;
	$s =~ s/([\\'])/\\$1/g;
	$s =~ s/([\x00-\x1f\x7f])/sprintf('\\x%02x', ord $1)/ge;
	return "E'$s'";
}

# The values of a row line as column => value (undef for null), quoted values read back:
# '' is a quote, \\ \n \r \t and \xNN are the escaped bytes.
sub row_values
{
	my ($line) = @_;
	$line =~ s/^table [^:]+: (?:INSERT|UPDATE|DELETE):(?: old-key:| old-row:)?//
	  or return ();
	my %v;
	while ($line =~ / ((?:new-row: )?)([^ :]+):(null|-?\d+|'(?:[^']|'')*')(?= |$)/g)
	{
		my ($name, $text) = ($2, $3);
		$v{$name} = $text eq 'null' ? undef : $text =~ /^'/ ? unescape($text) : $text;
	}
	return %v;
}

sub unescape
{
	my ($q) = @_;
	my %byte = ('\\' => '\\', n => "\n", r => "\r", t => "\t");
	# (not a whole quoted value of the escaped form: undef, which no stored value equals)
	$q =~ s/^'(.*)'$/$1/s or return undef;
	$q =~ /^(?:[^'\\]|''|\\(?:x[0-9a-f]{2}|[\\nrt]))*$/ or return undef;
	$q =~ s/''|\\(?:x([0-9a-f]{2})|([\\nrt]))/
	  $& eq "''" ? "'" : defined $1 ? chr(hex $1) : $byte{$2}/ge;
	return $q;
}

# The text form of ARRAY[body, 'plain'] (array_out: an element with a space, a quote, a backslash
# or nothing at all is double-quoted, with " and \ backslashed).
sub array_text
{
	my ($body) = @_;
	return undef unless defined $body;
	my $e = $body;
	if ($e eq '' || $e =~ /[\s"\\{},]|^null$/i)
	{
		$e =~ s/(["\\])/\\$1/g;
		$e = "\"$e\"";
	}
	return "{$e,plain}";
}
