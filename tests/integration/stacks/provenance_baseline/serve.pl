# Answers each connection with the version the image was built with (perl-base only).
use strict;
use warnings;
use IO::Socket::INET;

$| = 1;
open(my $file, '<', '/etc/server-version') or die "no /etc/server-version: $!";
chomp(my $version = <$file>);
close($file);
my $server = IO::Socket::INET->new(LocalAddr => '0.0.0.0:7000', Listen => 5, ReuseAddr => 1)
  or die "cannot listen: $!";
print "listening, version $version\n";
while (my $client = $server->accept) {
    print $client "version $version\n";
    close($client);
}
