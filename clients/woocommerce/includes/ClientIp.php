<?php
/**
 * The customer's IP address of the current request: the TCP peer, or, only when the peer is a
 * trusted proxy, the address the proxy forwarded (CF-Connecting-IP from Cloudflare's ranges,
 * else X-Forwarded-For walked from the right past every trusted hop).
 *
 * WooCommerce's own WC_Geolocation::get_ip_address() believes X-Real-IP and the first
 * X-Forwarded-For entry from any peer, which any visitor can forge; this reads the same
 * headers only behind the proxies the settings trust.
 *
 * @package Tagless
 */

declare(strict_types=1);

namespace Tagless;

final class ClientIp {
	/** @var list<string>|null */
	private static ?array $cloudflare = null;

	/**
	 * @param array<string, mixed> $server $_SERVER of the request
	 * @param list<string> $trusted CIDRs, addresses or "cloudflare"
	 */
	public static function resolve(array $server, array $trusted): ?string {
		$peer = self::address($server['REMOTE_ADDR'] ?? null);
		if ($peer === null || !self::trusted($peer, $trusted)) {
			return $peer;
		}
		if (in_array('cloudflare', $trusted, true) && self::in_any($peer, self::cloudflare())) {
			$cf = self::address($server['HTTP_CF_CONNECTING_IP'] ?? null);
			if ($cf !== null) {
				return $cf;
			}
		}
		$hops = array_map('trim', explode(',', (string) ($server['HTTP_X_FORWARDED_FOR'] ?? '')));
		$client = $peer;
		foreach (array_reverse($hops) as $hop) {
			$hop = self::address($hop);
			if ($hop === null) {
				break; // a forged or broken entry: believe nothing further left
			}
			$client = $hop;
			if (!self::trusted($hop, $trusted)) {
				break;
			}
		}
		return $client;
	}

	/** The current request's customer IP under the saved settings. */
	public static function current(): ?string {
		return self::resolve($_SERVER, Settings::get()['trusted_proxies']);
	}

	/** A valid IP address (IPv4-mapped IPv6 read as IPv4, brackets and IPv4 ports removed), else null. */
	public static function address(mixed $value): ?string {
		if (!is_string($value)) {
			return null;
		}
		$value = trim($value);
		if (preg_match('/^\[([^\]]+)\](?::\d+)?$/', $value, $m)) {
			$value = $m[1];
		} elseif (preg_match('/^(\d{1,3}(?:\.\d{1,3}){3}):\d+$/', $value, $m)) {
			$value = $m[1];
		}
		if (filter_var($value, FILTER_VALIDATE_IP) === false) {
			return null;
		}
		if (stripos($value, '::ffff:') === 0 && filter_var(substr($value, 7), FILTER_VALIDATE_IP, FILTER_FLAG_IPV4)) {
			return substr($value, 7);
		}
		return $value;
	}

	public static function valid_cidr(string $cidr): bool {
		[$net, $bits] = array_pad(explode('/', $cidr, 2), 2, null);
		$packed = @inet_pton((string) $net);
		if ($packed === false) {
			return false;
		}
		if ($bits === null) {
			return true;
		}
		return ctype_digit($bits) && (int) $bits <= strlen($packed) * 8;
	}

	/** @param list<string> $cidrs */
	public static function in_any(string $ip, array $cidrs): bool {
		$packed = @inet_pton($ip);
		if ($packed === false) {
			return false;
		}
		foreach ($cidrs as $cidr) {
			if (self::in_cidr($packed, $cidr)) {
				return true;
			}
		}
		return false;
	}

	/** @param list<string> $trusted */
	private static function trusted(string $ip, array $trusted): bool {
		$cidrs = array_values(array_filter($trusted, static fn ($t) => $t !== 'cloudflare'));
		if (in_array('cloudflare', $trusted, true)) {
			$cidrs = [...$cidrs, ...self::cloudflare()];
		}
		return self::in_any($ip, $cidrs);
	}

	private static function in_cidr(string $packed, string $cidr): bool {
		[$net, $bits] = array_pad(explode('/', $cidr, 2), 2, null);
		$net = @inet_pton((string) $net);
		if ($net === false || strlen($net) !== strlen($packed)) {
			return false;
		}
		$bits = $bits === null ? strlen($net) * 8 : (int) $bits;
		$whole = intdiv($bits, 8);
		if (substr($packed, 0, $whole) !== substr($net, 0, $whole)) {
			return false;
		}
		$rest = $bits % 8;
		if ($rest === 0) {
			return true;
		}
		$mask = (0xff << (8 - $rest)) & 0xff;
		return (ord($packed[$whole]) & $mask) === (ord($net[$whole]) & $mask);
	}

	/** @return list<string> */
	public static function cloudflare(): array {
		if (self::$cloudflare === null) {
			$lines = file(__DIR__ . '/data/cloudflare.txt', FILE_IGNORE_NEW_LINES | FILE_SKIP_EMPTY_LINES) ?: [];
			self::$cloudflare = array_values(array_filter($lines, static fn ($l) => $l[0] !== '#'));
		}
		return self::$cloudflare;
	}
}
