<?php
/**
 * Wires the plugin into WordPress: activation (the queue table, the retry job), the
 * WooCommerce and form hooks, the page-view hook, the background flush and the admin screens.
 *
 * @package Tagless
 */

declare(strict_types=1);

namespace Tagless;

final class Plugin {
	public const DB_VERSION = '1';

	public static function boot(): void {
		add_filter('cron_schedules', [self::class, 'cron_schedules']);
		add_action(Queue::FLUSH_HOOK, [Queue::class, 'run'], 10, 0);
		add_action('tagless_retry', [Queue::class, 'run'], 10, 0);
		add_action('plugins_loaded', [self::class, 'loaded']);
		add_action('init', [Queue::class, 'schedule_retries']);
		if (is_admin()) {
			Admin::register();
		}
	}

	/** Once every plugin is loaded: upgrade the table if needed, hook in when configured. */
	public static function loaded(): void {
		if (!wp_installing() && get_option('tagless_db_version') !== self::DB_VERSION) {
			self::activate();
		}
		if (!Settings::configured()) {
			return; // nothing is queued until Tagless's URL and write key are set
		}
		WooEvents::register();
		PageViews::register();
		Forms::register();
	}

	public static function activate(): void {
		Queue::install();
		update_option('tagless_db_version', self::DB_VERSION);
		add_option(Settings::OPTION, Settings::get());
	}

	/** @param array<string, array<string, mixed>> $schedules */
	public static function cron_schedules(array $schedules): array {
		$schedules['tagless_minute'] = ['interval' => 60, 'display' => 'Every minute (Tagless retries)'];
		return $schedules;
	}
}
