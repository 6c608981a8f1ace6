<?php
/**
 * The health line of the settings page: when Tagless last took events, and the last error.
 *
 * @package Tagless
 */

declare(strict_types=1);

namespace Tagless;

final class Health {
	public const OPTION = 'tagless_health';

	public static function delivered(int $count): void {
		$health = self::get();
		$health['last_delivery'] = time();
		$health['last_delivered'] = $count;
		update_option(self::OPTION, $health, false);
	}

	public static function failed(string $error): void {
		$health = self::get();
		$health['last_error'] = $error;
		$health['last_error_at'] = time();
		update_option(self::OPTION, $health, false);
	}

	/** @return array{last_delivery?: int, last_delivered?: int, last_error?: string, last_error_at?: int} */
	public static function get(): array {
		$health = get_option(self::OPTION, []);
		return is_array($health) ? $health : [];
	}

	/** One line: last delivery, queue length, last error. */
	public static function line(): string {
		$h = self::get();
		$counts = Queue::counts();
		$parts = [
			isset($h['last_delivery'])
				? sprintf('Last delivery: %s UTC (%d events)', gmdate('Y-m-d H:i:s', $h['last_delivery']), $h['last_delivered'] ?? 0)
				: 'Last delivery: never',
			sprintf('Queue: %d waiting, %d failed', $counts['pending'], $counts['failed']),
			isset($h['last_error'])
				? sprintf('Last error: %s (%s UTC)', $h['last_error'], gmdate('Y-m-d H:i:s', $h['last_error_at'] ?? 0))
				: 'Last error: none',
		];
		return implode(' · ', $parts);
	}
}
