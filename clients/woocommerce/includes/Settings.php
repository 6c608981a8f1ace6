<?php
/**
 * The plugin's settings (one option, `tagless_settings`): reading with defaults and checking
 * what the settings form posts.
 *
 * @package Tagless
 */

declare(strict_types=1);

namespace Tagless;

final class Settings {
	public const OPTION = 'tagless_settings';

	/** Event switch => what it sends. */
	public const EVENTS = [
		'page_view'     => 'Page view (first page of a visit)',
		'product_view'  => 'Product viewed',
		'add_to_cart'   => 'Product added to cart',
		'checkout'      => 'Checkout started',
		'purchase'      => 'Purchase (order completed)',
		'refund'        => 'Refund',
		'lead'          => 'Lead (Gravity Forms, WPForms, Contact Form 7)',
	];

	/** @return array{url: string, write_key: string, trusted_proxies: list<string>, events: list<string>} */
	public static function get(): array {
		$saved = get_option(self::OPTION, []);
		$saved = is_array($saved) ? $saved : [];
		return [
			'url'             => (string) ($saved['url'] ?? ''),
			'write_key'       => (string) ($saved['write_key'] ?? ''),
			'trusted_proxies' => array_values(array_map('strval', (array) ($saved['trusted_proxies'] ?? []))),
			'events'          => array_values(array_map('strval', (array) ($saved['events'] ?? array_keys(self::EVENTS)))),
		];
	}

	public static function sends(string $event): bool {
		return in_array($event, self::get()['events'], true);
	}

	/** Whether a URL and a write key are set, so that events can be sent. */
	public static function configured(): bool {
		$s = self::get();
		return $s['url'] !== '' && $s['write_key'] !== '';
	}

	/**
	 * What the settings form posted, checked: url (http/https), write_key (kept when the form
	 * leaves it empty: the page never echoes it back), trusted_proxies (one CIDR, address or
	 * "Cloudflare" a line), events. Returns [settings, errors by field].
	 *
	 * @param array<string, mixed> $input
	 * @return array{0: array<string, mixed>, 1: array<string, string>}
	 */
	public static function check(array $input): array {
		$current = self::get();
		$errors = [];
		$url = rtrim(trim((string) ($input['url'] ?? '')), '/');
		if ($url !== '' && !preg_match('~^https?://[^\s/?#]+(/[^\s?#]*)?$~i', $url)) {
			$errors['url'] = 'Tagless URL: expected http:// or https:// and a host, such as https://data.example-store.com';
			$url = $current['url'];
		}
		$key = trim((string) ($input['write_key'] ?? ''));
		if ($key === '') {
			$key = $current['write_key'];
		} elseif (!preg_match('/^[\x21-\x7e]{1,200}$/', $key)) {
			$errors['write_key'] = 'Write key: expected 1 to 200 visible ASCII characters without spaces';
			$key = $current['write_key'];
		}
		$proxies = [];
		$lines = preg_split('/[\s,]+/', (string) ($input['trusted_proxies'] ?? ''), -1, PREG_SPLIT_NO_EMPTY) ?: [];
		foreach ($lines as $line) {
			if (strcasecmp($line, 'cloudflare') === 0) {
				$proxies[] = 'cloudflare';
			} elseif (ClientIp::valid_cidr($line)) {
				$proxies[] = $line;
			} else {
				$errors['trusted_proxies'] = "Trusted proxies: {$line} is not a CIDR (203.0.113.0/24), an address or Cloudflare";
				$proxies = $current['trusted_proxies'];
				break;
			}
		}
		$events = array_values(array_intersect(array_keys(self::EVENTS), array_map('strval', (array) ($input['events'] ?? []))));
		$settings = ['url' => $url, 'write_key' => $key, 'trusted_proxies' => array_values(array_unique($proxies)), 'events' => $events];
		return [$settings, $errors];
	}

	/** The write key as the settings page shows it: its last four characters only. */
	public static function masked_key(): string {
		$key = self::get()['write_key'];
		if ($key === '') {
			return '';
		}
		return str_repeat('•', 8) . (strlen($key) > 8 ? substr($key, -4) : '');
	}
}
