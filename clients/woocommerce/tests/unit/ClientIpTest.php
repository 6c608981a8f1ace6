<?php
/** The customer's IP: forwarding headers believed only from trusted proxies. */

declare(strict_types=1);

use Tagless\ClientIp;

final class ClientIpTest extends TaglessTestCase {
	/** An untrusted peer's X-Forwarded-For is ignored: a visitor cannot claim another address. */
	public function test_untrusted_peer_forwarding_headers_are_ignored(): void {
		$server = ['REMOTE_ADDR' => '81.2.69.142', 'HTTP_X_FORWARDED_FOR' => '1.2.3.4', 'HTTP_CF_CONNECTING_IP' => '5.6.7.8'];
		$this->assertSame('81.2.69.142', ClientIp::resolve($server, ['10.0.0.0/8', 'cloudflare']));
	}

	/** Behind a trusted proxy, X-Forwarded-For is walked from the right past every trusted hop; what the customer forged on the left is not reached. */
	public function test_forwarded_for_is_walked_from_the_right_past_trusted_hops(): void {
		$server = ['REMOTE_ADDR' => '10.0.0.2', 'HTTP_X_FORWARDED_FOR' => '1.2.3.4, 81.2.69.142, 10.0.0.9'];
		$this->assertSame('81.2.69.142', ClientIp::resolve($server, ['10.0.0.0/8']));
	}

	/** CF-Connecting-IP counts only from a Cloudflare edge address when "cloudflare" is trusted. */
	public function test_cloudflare_header_only_from_cloudflare_ranges(): void {
		$edge = ['REMOTE_ADDR' => '173.245.48.10', 'HTTP_CF_CONNECTING_IP' => '2001:db8::1'];
		$this->assertSame('2001:db8::1', ClientIp::resolve($edge, ['cloudflare']));
		$this->assertSame('173.245.48.10', ClientIp::resolve($edge, ['10.0.0.0/8']));
		$elsewhere = ['REMOTE_ADDR' => '10.0.0.2', 'HTTP_CF_CONNECTING_IP' => '5.6.7.8'];
		$this->assertSame('10.0.0.2', ClientIp::resolve($elsewhere, ['10.0.0.0/8', 'cloudflare']));
	}

	/** IPv6 ranges, IPv4-mapped IPv6 and ports are read as addresses; garbage stops the walk. */
	public function test_address_forms(): void {
		$this->assertSame('81.2.69.142', ClientIp::address('::ffff:81.2.69.142'));
		$this->assertSame('81.2.69.142', ClientIp::address('81.2.69.142:4711'));
		$this->assertSame('2001:db8::5', ClientIp::address('[2001:db8::5]:443'));
		$this->assertNull(ClientIp::address('unknown'));
		$server = ['REMOTE_ADDR' => 'fd00::1', 'HTTP_X_FORWARDED_FOR' => '9.9.9.9, garbage'];
		$this->assertSame('fd00::1', ClientIp::resolve($server, ['fd00::/8']));
	}

	/** Settings accept CIDRs, addresses and Cloudflare, and name what is wrong otherwise. */
	public function test_cidr_validation(): void {
		$this->assertTrue(ClientIp::valid_cidr('10.0.0.0/8'));
		$this->assertTrue(ClientIp::valid_cidr('2001:db8::/32'));
		$this->assertTrue(ClientIp::valid_cidr('192.0.2.1'));
		$this->assertFalse(ClientIp::valid_cidr('10.0.0.0/33'));
		$this->assertFalse(ClientIp::valid_cidr('lb.internal'));
	}
}
