<?php
/**
 * The customer's consent at their own request, as Tagless reads it: Segment's
 * `context.consent.categoryPreferences` (category => true/false).
 *
 * Read from the WP Consent API (when a consent banner registered a consent type) and from the
 * cookies of OneTrust (`OptanonConsent` groups, sent by id: C0002 performance, C0004
 * targeting, ...), Complianz (`cmplz_<category>` = allow/deny) and CookieYes
 * (`cookieyes-consent`). Category names are those Tagless's defaults give a meaning:
 * `advertising` (marketing, advertisement) and `analytics` (statistics), plus `functional`
 * and `preferences`. Nothing stated: no consent is sent, and Tagless counts it unknown.
 *
 * @package Tagless
 */

declare(strict_types=1);

namespace Tagless;

final class Consent {
	/** A consent manager's category => the name sent to Tagless. */
	private const NAMES = [
		'marketing'     => 'advertising',
		'advertisement' => 'advertising',
		'statistics'    => 'analytics',
		'analytics'     => 'analytics',
		'performance'   => 'performance',
		'functional'    => 'functional',
		'preferences'   => 'preferences',
	];

	/**
	 * The `context.consent` object of the current request, or null when nothing is stated.
	 *
	 * @param array<string, string> $cookies
	 * @return array{categoryPreferences: array<string, bool>}|null
	 */
	public static function read(array $cookies): ?array {
		$prefs = [];
		self::wp_consent_api($prefs);
		self::onetrust($cookies, $prefs);
		self::complianz($cookies, $prefs);
		self::cookieyes($cookies, $prefs);
		return $prefs ? ['categoryPreferences' => $prefs] : null;
	}

	/** Whether the customer denied advertising (click ids are then not kept in a cookie). */
	public static function advertising_denied(array $cookies): bool {
		return (self::read($cookies)['categoryPreferences']['advertising'] ?? true) === false;
	}

	/** @param array<string, bool> $prefs */
	private static function wp_consent_api(array &$prefs): void {
		if (!function_exists('wp_has_consent') || !function_exists('wp_get_consent_type') || !wp_get_consent_type()) {
			return; // without a banner's consent type, wp_has_consent() states nothing
		}
		foreach (['marketing', 'statistics', 'preferences', 'functional'] as $category) {
			self::note($prefs, self::NAMES[$category], (bool) wp_has_consent($category));
		}
	}

	/** @param array<string, string> $cookies @param array<string, bool> $prefs */
	private static function onetrust(array $cookies, array &$prefs): void {
		if (!isset($cookies['OptanonConsent'])) {
			return;
		}
		parse_str((string) $cookies['OptanonConsent'], $fields);
		foreach (explode(',', (string) ($fields['groups'] ?? '')) as $group) {
			if (preg_match('/^([A-Za-z0-9]{1,20}):([01])$/', trim($group), $m)) {
				self::note($prefs, $m[1], $m[2] === '1');
			}
		}
	}

	/** @param array<string, string> $cookies @param array<string, bool> $prefs */
	private static function complianz(array $cookies, array &$prefs): void {
		foreach (['marketing', 'statistics', 'preferences', 'functional'] as $category) {
			$v = $cookies["cmplz_{$category}"] ?? null;
			if ($v === 'allow' || $v === 'deny') {
				self::note($prefs, self::NAMES[$category], $v === 'allow');
			}
		}
	}

	/** @param array<string, string> $cookies @param array<string, bool> $prefs */
	private static function cookieyes(array $cookies, array &$prefs): void {
		if (!isset($cookies['cookieyes-consent'])) {
			return;
		}
		foreach (explode(',', (string) $cookies['cookieyes-consent']) as $pair) {
			[$k, $v] = array_pad(explode(':', $pair, 2), 2, '');
			if (isset(self::NAMES[$k]) && ($v === 'yes' || $v === 'no')) {
				self::note($prefs, self::NAMES[$k], $v === 'yes');
			}
		}
	}

	/** A denial stated anywhere wins over a grant stated elsewhere. @param array<string, bool> $prefs */
	private static function note(array &$prefs, string $name, bool $granted): void {
		$prefs[$name] = ($prefs[$name] ?? true) && $granted;
	}
}
