<?php
/**
 * What the customer's own request says about them: IP, user agent, page, the click and device
 * ids of their visit (cookies, and the landing URL's fbclid/gclid/gbraid/wbraid kept in a
 * first-party cookie until checkout), an anonymous id, and their consent.
 *
 * @package Tagless
 */

declare(strict_types=1);

namespace Tagless;

final class Visitor {
	public const ANONYMOUS_COOKIE = 'tagless_aid';
	public const IDS_COOKIE = 'tagless_ids';
	/** Cookies forwarded as `context.cookies` (Tagless reads fbp, fbc, the GA client id and the Spotify device id from them). */
	public const COOKIES = ['_fbp', '_fbc', '_ga', '__spdt', '__pdst', '_spdt'];
	/** Landing-URL parameters kept for the visit. */
	public const URL_IDS = ['fbclid', 'gclid', 'gbraid', 'wbraid'];
	private const IDS_DAYS = 90;
	private const ID_PATTERN = '/^[A-Za-z0-9._~:+\/=%-]{1,256}$/';

	/** On a front-end page load: keep the landing URL's click ids and make sure of an anonymous id. */
	public static function remember(): void {
		self::anonymous_id();
		$seen = self::url_ids($_GET);
		if (!$seen || Consent::advertising_denied(self::cookies_all())) {
			return;
		}
		$ids = array_merge(self::kept_ids(), $seen);
		self::set_cookie(self::IDS_COOKIE, (string) wp_json_encode($ids), time() + self::IDS_DAYS * DAY_IN_SECONDS);
	}

	/** The anonymous id of this browser (a first-party cookie, made on first use). */
	public static function anonymous_id(): string {
		$id = self::cookies_all()[self::ANONYMOUS_COOKIE] ?? '';
		if (!preg_match('/^[a-f0-9-]{36}$/', $id)) {
			$id = wp_generate_uuid4();
			self::set_cookie(self::ANONYMOUS_COOKIE, $id, time() + YEAR_IN_SECONDS);
		}
		return $id;
	}

	/**
	 * The Segment `context` of the current request (only what is known).
	 *
	 * @return array<string, mixed>
	 */
	public static function context(): array {
		$cookies = self::cookies_all();
		$context = [
			'ip'        => ClientIp::current(),
			'userAgent' => self::user_agent(),
			'page'      => array_filter(['url' => self::page_url(), 'referrer' => self::server('HTTP_REFERER')]),
			'cookies'   => array_intersect_key($cookies, array_flip(self::COOKIES)),
			'click_ids' => array_merge(self::kept_ids(), self::url_ids($_GET)),
			'consent'   => Consent::read($cookies),
		];
		return array_filter($context, static fn ($v) => $v !== null && $v !== [] && $v !== '');
	}

	public static function user_agent(): ?string {
		$ua = self::server('HTTP_USER_AGENT');
		return $ua === null ? null : mb_substr($ua, 0, 1000);
	}

	/** Whether the request looks like a crawler, a monitor or a prefetch rather than a person. */
	public static function is_bot(): bool {
		$ua = self::user_agent();
		if ($ua === null || $ua === '') {
			return true;
		}
		$purpose = strtolower((string) (self::server('HTTP_SEC_PURPOSE') ?? self::server('HTTP_PURPOSE') ?? ''));
		if (str_contains($purpose, 'prefetch')) {
			return true;
		}
		return (bool) preg_match(
			'/bot\b|bot\/|crawl|spider|slurp|facebookexternalhit|headless|lighthouse|pingdom|uptime|monitor|preview|curl\/|wget\/|python-|go-http-client|java\/|okhttp|libwww|httpclient|scrapy|wordpress\//i',
			$ua
		);
	}

	/**
	 * The click ids of a landing URL's parameters; fbclid becomes Meta's fbc value
	 * `fb.1.<milliseconds>.<fbclid>` (the time it was seen).
	 *
	 * @param array<string, mixed> $query
	 * @return array<string, string>
	 */
	public static function url_ids(array $query): array {
		$ids = [];
		foreach (self::URL_IDS as $key) {
			$v = $query[$key] ?? null;
			if (is_string($v) && preg_match(self::ID_PATTERN, $v = wp_unslash($v))) {
				if ($key === 'fbclid') {
					$ids['fbc'] = 'fb.1.' . (int) floor(microtime(true) * 1000) . '.' . $v;
				} else {
					$ids[$key] = $v;
				}
			}
		}
		return $ids;
	}

	/** @return array<string, string> the request's cookies, unslashed */
	public static function cookies_all(): array {
		$out = [];
		foreach ($_COOKIE as $k => $v) {
			if (is_string($k) && is_string($v)) {
				$out[$k] = wp_unslash($v);
			}
		}
		return $out;
	}

	/** @return array<string, string> */
	private static function kept_ids(): array {
		$kept = json_decode(self::cookies_all()[self::IDS_COOKIE] ?? '', true);
		if (!is_array($kept)) {
			return [];
		}
		$out = [];
		foreach (['fbc', 'gclid', 'gbraid', 'wbraid'] as $key) {
			if (is_string($kept[$key] ?? null) && preg_match(self::ID_PATTERN, $kept[$key])) {
				$out[$key] = $kept[$key];
			}
		}
		return $out;
	}

	private static function page_url(): ?string {
		$uri = self::server('REQUEST_URI');
		if ($uri === null) {
			return null;
		}
		$home = wp_parse_url(home_url());
		$port = isset($home['port']) ? ':' . $home['port'] : '';
		return ($home['scheme'] ?? 'http') . '://' . ($home['host'] ?? '') . $port . $uri;
	}

	private static function server(string $key): ?string {
		$v = $_SERVER[$key] ?? null;
		return is_string($v) && $v !== '' ? wp_unslash($v) : null;
	}

	private static function set_cookie(string $name, string $value, int $expires): void {
		$_COOKIE[$name] = wp_slash($value); // WordPress keeps its superglobals slashed
		if (!headers_sent()) {
			setcookie($name, $value, [
				'expires'  => $expires,
				'path'     => defined('COOKIEPATH') && COOKIEPATH ? COOKIEPATH : '/',
				'domain'   => defined('COOKIE_DOMAIN') && COOKIE_DOMAIN ? COOKIE_DOMAIN : '',
				'secure'   => is_ssl(),
				'httponly' => true,
				'samesite' => 'Lax',
			]);
		}
	}
}
