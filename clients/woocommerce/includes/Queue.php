<?php
/**
 * The outbox of the plugin: every event is stored in the `{prefix}tagless_queue` table during
 * the request that caused it (never sent there), then posted in batches by a background job
 * (Action Scheduler when WooCommerce ships it, else WP-Cron), retried with exponential backoff
 * while Tagless is unreachable, and kept with its outcome for the log screen.
 *
 * An event's `message_id` is unique in the table, so an event queued twice (a purchase whose
 * payment hook and status hook both fire) is stored once.
 *
 * @package Tagless
 */

declare(strict_types=1);

namespace Tagless;

final class Queue {
	public const FLUSH_HOOK = 'tagless_flush';
	public const HEALTH_OPTION = 'tagless_health';
	public const BATCH_SIZE = 100;
	/** Backoff: 30 s doubling up to an hour, with jitter; an event is given up after 7 days (Meta's limit). */
	public const FIRST_RETRY_SECS = 30;
	public const MAX_RETRY_SECS = 3600;
	public const GIVE_UP_SECS = 7 * 86400;
	/** Delivered rows are kept this long for the log screen. */
	public const KEEP_SENT_SECS = 30 * 86400;

	public static function table(): string {
		global $wpdb;
		return $wpdb->prefix . 'tagless_queue';
	}

	/** Creates or upgrades the table (plugin activation). */
	public static function install(): void {
		global $wpdb;
		require_once ABSPATH . 'wp-admin/includes/upgrade.php';
		$table = self::table();
		$charset = $wpdb->get_charset_collate();
		dbDelta("CREATE TABLE {$table} (
			id bigint(20) unsigned NOT NULL AUTO_INCREMENT,
			message_id varchar(200) NOT NULL,
			event varchar(100) NOT NULL,
			payload longtext NOT NULL,
			status varchar(10) NOT NULL DEFAULT 'pending',
			attempts int(10) unsigned NOT NULL DEFAULT 0,
			created_at datetime NOT NULL,
			next_attempt_at datetime NOT NULL,
			sent_at datetime NULL,
			last_status smallint(5) unsigned NOT NULL DEFAULT 0,
			last_error text NULL,
			PRIMARY KEY  (id),
			UNIQUE KEY message_id (message_id),
			KEY due (status, next_attempt_at)
		) {$charset};");
	}

	/**
	 * Stores a message for sending; true when it was new (false: the same messageId was
	 * already queued). Schedules a flush.
	 *
	 * @param array<string, mixed> $message
	 */
	public static function add(array $message): bool {
		global $wpdb;
		$now = gmdate('Y-m-d H:i:s');
		$event = (string) ($message['event'] ?? $message['type'] ?? 'event');
		$added = $wpdb->query($wpdb->prepare(
			'INSERT IGNORE INTO ' . self::table() . ' (message_id, event, payload, created_at, next_attempt_at) VALUES (%s, %s, %s, %s, %s)',
			(string) $message['messageId'],
			$event,
			wp_json_encode($message),
			$now,
			$now
		));
		if ($added === false) {
			// The database's message may quote the row (customer data): it is not logged.
			error_log("tagless: could not queue a {$event} event (database error)");
			return false;
		}
		if ($added > 0) {
			self::schedule();
		}
		return $added > 0;
	}

	/** Asks the background runner for a flush soon (once, however many events were queued). */
	public static function schedule(): void {
		$action_scheduler = function_exists('as_enqueue_async_action') && function_exists('as_has_scheduled_action');
		/** Filter: false sends through WP-Cron even where Action Scheduler is installed. */
		if (apply_filters('tagless_use_action_scheduler', $action_scheduler)) {
			if (!as_has_scheduled_action(self::FLUSH_HOOK, [], 'tagless')) {
				as_enqueue_async_action(self::FLUSH_HOOK, [], 'tagless');
			}
			return;
		}
		if (!wp_next_scheduled(self::FLUSH_HOOK)) {
			wp_schedule_single_event(time(), self::FLUSH_HOOK);
		}
	}

	/** The minute-by-minute job that retries what is due (registered at activation). */
	public static function schedule_retries(): void {
		if (!wp_installing() && !wp_next_scheduled('tagless_retry')) {
			wp_schedule_event(time() + 60, 'tagless_minute', 'tagless_retry');
		}
	}

	/** The background job (its hook passes no usable argument). */
	public static function run(): void {
		self::flush();
	}

	/**
	 * Posts every due event, a batch at a time, until none is due or `$max_batches` were
	 * posted. Returns how many events were delivered.
	 */
	public static function flush(int $max_batches = 20): int {
		$settings = Settings::get();
		if ($settings['url'] === '' || $settings['write_key'] === '') {
			return 0;
		}
		$delivered = 0;
		for ($i = 0; $i < $max_batches; $i++) {
			$rows = self::due(self::BATCH_SIZE);
			if (!$rows) {
				break;
			}
			[$sent, $stop] = self::post($settings, $rows);
			$delivered += $sent;
			if ($stop) {
				break;
			}
		}
		self::purge();
		return $delivered;
	}

	/**
	 * One batch: returns [delivered count, whether to stop for now].
	 *
	 * @param array<string, mixed> $settings
	 * @param list<object> $rows
	 * @return array{0: int, 1: bool}
	 */
	private static function post(array $settings, array $rows): array {
		$messages = array_map(static fn ($row) => json_decode($row->payload, true), $rows);
		$answer = Sender::post($settings['url'], $settings['write_key'], $messages);
		if ($answer['outcome'] === 'delivered') {
			self::settle($rows, 'sent', $answer['status'], '');
			Health::delivered(count($rows));
			return [count($rows), false];
		}
		Health::failed($answer['error']);
		if ($answer['outcome'] === 'retry') {
			foreach ($rows as $row) {
				self::retry($row, $answer['status'], $answer['error'], $answer['retry_after']);
			}
			return [0, true];
		}
		if ($answer['index'] !== null && isset($rows[$answer['index']])) {
			self::settle([$rows[$answer['index']]], 'failed', $answer['status'], $answer['error']);
			return [0, false]; // the others go again in the next batch
		}
		if (count($rows) === 1) {
			self::settle($rows, 'failed', $answer['status'], $answer['error']);
			return [0, false];
		}
		// Refused as a whole without naming a message (413): send them one by one.
		$sent = 0;
		foreach ($rows as $row) {
			$sent += self::post($settings, [$row])[0];
		}
		return [$sent, false];
	}

	/** @return list<object> */
	private static function due(int $limit): array {
		global $wpdb;
		return $wpdb->get_results($wpdb->prepare(
			'SELECT * FROM ' . self::table() . " WHERE status = 'pending' AND next_attempt_at <= %s ORDER BY id LIMIT %d",
			gmdate('Y-m-d H:i:s'),
			$limit
		)) ?: [];
	}

	private static function retry(object $row, int $status, string $error, ?int $retry_after): void {
		global $wpdb;
		$attempts = (int) $row->attempts + 1;
		if (time() - strtotime($row->created_at . ' UTC') > self::GIVE_UP_SECS) {
			self::settle([$row], 'failed', $status, 'given up after 7 days of retries; last: ' . $error);
			return;
		}
		$wpdb->update(self::table(), [
			'attempts'        => $attempts,
			'next_attempt_at' => gmdate('Y-m-d H:i:s', time() + self::backoff($attempts, $retry_after)),
			'last_status'     => $status,
			'last_error'      => $error,
		], ['id' => $row->id]);
	}

	/** Seconds before attempt `$attempts + 1`: doubling from 30 s, at most an hour, full jitter over the upper half; Retry-After wins when longer. */
	public static function backoff(int $attempts, ?int $retry_after = null): int {
		$cap = min(self::MAX_RETRY_SECS, self::FIRST_RETRY_SECS * (2 ** min($attempts - 1, 20)));
		$wait = intdiv($cap, 2) + random_int(0, intdiv($cap, 2));
		return max($wait, min((int) $retry_after, self::MAX_RETRY_SECS));
	}

	/** @param list<object> $rows */
	private static function settle(array $rows, string $status, int $http_status, string $error): void {
		global $wpdb;
		foreach ($rows as $row) {
			$wpdb->update(self::table(), [
				'status'      => $status,
				'attempts'    => (int) $row->attempts + 1,
				'sent_at'     => $status === 'sent' ? gmdate('Y-m-d H:i:s') : null,
				'last_status' => $http_status,
				'last_error'  => $error === '' ? null : $error,
			], ['id' => $row->id]);
		}
	}

	private static function purge(): void {
		global $wpdb;
		$wpdb->query($wpdb->prepare(
			'DELETE FROM ' . self::table() . " WHERE status = 'sent' AND sent_at < %s",
			gmdate('Y-m-d H:i:s', time() - self::KEEP_SENT_SECS)
		));
	}

	/** @return array<string, int> events by status */
	public static function counts(): array {
		global $wpdb;
		$out = ['pending' => 0, 'sent' => 0, 'failed' => 0];
		foreach ($wpdb->get_results('SELECT status, COUNT(*) AS n FROM ' . self::table() . ' GROUP BY status') ?: [] as $row) {
			$out[$row->status] = (int) $row->n;
		}
		return $out;
	}

	/** @return list<object> the latest events, newest first, for the log screen */
	public static function latest(int $limit = 50): array {
		global $wpdb;
		return $wpdb->get_results($wpdb->prepare(
			'SELECT id, message_id, event, status, attempts, created_at, next_attempt_at, sent_at, last_status, last_error FROM ' . self::table() . ' ORDER BY id DESC LIMIT %d',
			$limit
		)) ?: [];
	}

	/** Makes failed events due again (the log screen's "retry failed" button); returns how many. */
	public static function retry_failed(): int {
		global $wpdb;
		$n = $wpdb->query($wpdb->prepare(
			'UPDATE ' . self::table() . " SET status = 'pending', next_attempt_at = %s, created_at = %s WHERE status = 'failed'",
			gmdate('Y-m-d H:i:s'),
			gmdate('Y-m-d H:i:s')
		));
		self::schedule();
		return (int) $n;
	}
}
