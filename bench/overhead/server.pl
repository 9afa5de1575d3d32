# A small TCP service for the benchmark stacks (perl-base only, so any Debian minbase image).
# Usage: perl server.pl TAG [DELAY_SECONDS]
# After DELAY_SECONDS it listens on port 7000 and prints "listening at <epoch seconds>", the
# moment a readiness probe could first succeed. It answers "PING" with "+PONG" (the redis
# probe) and any other line with "TAG:line".
use strict;
use warnings;
use IO::Socket::INET;

$| = 1;
my ($tag, $delay) = (@ARGV, 0);
$SIG{TERM} = sub { exit 0 };
select(undef, undef, undef, $delay) if $delay > 0;
my $server = IO::Socket::INET->new(LocalAddr => '0.0.0.0:7000', Listen => 64, ReuseAddr => 1)
    or die "cannot listen on 7000: $!\n";
print "listening at ", now(), "\n";
while (my $conn = $server->accept) {
    my $line = <$conn> // '';
    if ($line =~ /^PING/) { print $conn "+PONG\r\n" } else { print $conn "$tag:$line" }
    close $conn;
}

# Wall-clock time with microseconds: gettimeofday(2) (Time::HiRes is not in perl-base).
sub now {
    my $timeval = pack('q2', 0, 0);
    return time() if syscall(96, $timeval, 0) != 0;    # 96: gettimeofday on x86_64
    my ($sec, $usec) = unpack('q2', $timeval);
    return sprintf('%d.%06d', $sec, $usec);
}
