<?php
/**
 * The admin screens (Settings → Tagless): the settings form, the "send test event" button with
 * Tagless's answer, the health line, and the log of recent events.
 *
 * @package Tagless
 */

declare(strict_types=1);

namespace Tagless;

final class Admin {
	public const PAGE = 'tagless';
	private const NOTICE = 'tagless_admin_notice';

	public static function register(): void {
		add_action('admin_menu', [self::class, 'menu']);
		add_action('admin_post_tagless_save', [self::class, 'save']);
		add_action('admin_post_tagless_test', [self::class, 'test']);
		add_action('admin_post_tagless_retry_failed', [self::class, 'retry_failed']);
	}

	public static function menu(): void {
		add_options_page('Tagless', 'Tagless', 'manage_options', self::PAGE, [self::class, 'render']);
	}

	/** The settings form's post: checked, stored, errors shown. */
	public static function save(): void {
		self::guard('tagless_save');
		[$settings, $errors] = Settings::check(wp_unslash($_POST['tagless'] ?? []));
		update_option(Settings::OPTION, $settings);
		self::notice($errors ? implode("\n", $errors) : 'Settings saved.', $errors ? 'error' : 'success');
		self::back();
	}

	/** "Send test event": Tagless's answer shown. */
	public static function test(): void {
		self::guard('tagless_test');
		[$ok, $text] = self::send_test();
		self::notice($text, $ok ? 'success' : 'error');
		self::back();
	}

	/**
	 * Posts an identify call now (no ad platform receives those); returns [delivered, what
	 * Tagless answered].
	 *
	 * @return array{0: bool, 1: string}
	 */
	public static function send_test(): array {
		$s = Settings::get();
		if (!Settings::configured()) {
			return [false, 'Set the Tagless URL and the write key first.'];
		}
		$message = [
			'type'        => 'identify',
			'messageId'   => 'tagless_test_' . wp_generate_uuid4(),
			'anonymousId' => 'tagless-woocommerce-test',
			'timestamp'   => gmdate('Y-m-d\TH:i:s\Z'),
			'traits'      => ['test' => true],
			'context'     => ['library' => ['name' => 'tagless-woocommerce', 'version' => TAGLESS_VERSION]],
		];
		$answer = Sender::post($s['url'], $s['write_key'], [$message]);
		$said = $answer['status'] ? "{$answer['status']} {$answer['body']}" : $answer['error'];
		return [$answer['outcome'] === 'delivered', "Test event {$message['messageId']}: Tagless answered {$said}"];
	}

	public static function retry_failed(): void {
		self::guard('tagless_retry_failed');
		self::notice(sprintf('%d failed events will be sent again.', Queue::retry_failed()), 'success');
		self::back('log');
	}

	public static function render(): void {
		if (!current_user_can('manage_options')) {
			return;
		}
		$tab = ($_GET['tab'] ?? '') === 'log' ? 'log' : 'settings';
		$base = admin_url('options-general.php?page=' . self::PAGE);
		echo '<div class="wrap"><h1>Tagless</h1>';
		self::show_notice();
		echo '<p class="tagless-health">' . esc_html(Health::line()) . '</p>';
		printf(
			'<nav class="nav-tab-wrapper"><a class="nav-tab%s" href="%s">Settings</a><a class="nav-tab%s" href="%s">Log</a></nav>',
			$tab === 'settings' ? ' nav-tab-active' : '',
			esc_url($base),
			$tab === 'log' ? ' nav-tab-active' : '',
			esc_url($base . '&tab=log')
		);
		$tab === 'log' ? self::render_log() : self::render_settings();
		echo '</div>';
	}

	private static function render_settings(): void {
		$s = Settings::get();
		echo '<form method="post" action="' . esc_url(admin_url('admin-post.php')) . '">';
		wp_nonce_field('tagless_save');
		echo '<input type="hidden" name="action" value="tagless_save"><table class="form-table">';
		printf('<tr><th><label for="tagless-url">Tagless URL</label></th><td><input id="tagless-url" class="regular-text" name="tagless[url]" value="%s" placeholder="https://data.example-store.com"></td></tr>', esc_attr($s['url']));
		printf(
			'<tr><th><label for="tagless-key">Server write key</label></th><td><input id="tagless-key" class="regular-text" name="tagless[write_key]" type="password" autocomplete="off" value="" placeholder="%s"><p class="description">%s</p></td></tr>',
			esc_attr(Settings::masked_key() ?: 'not set'),
			'Stored, never shown again: leave empty to keep the saved key.'
		);
		printf(
			'<tr><th><label for="tagless-proxies">Trusted proxies</label></th><td><textarea id="tagless-proxies" name="tagless[trusted_proxies]" rows="3" cols="40">%s</textarea><p class="description">%s</p></td></tr>',
			esc_textarea(implode("\n", $s['trusted_proxies'])),
			'One CIDR or address a line (your load balancer, 10.0.0.0/8), or Cloudflare. X-Forwarded-For and CF-Connecting-IP are believed only from these.'
		);
		echo '<tr><th>Events</th><td>';
		foreach (Settings::EVENTS as $key => $label) {
			printf('<label><input type="checkbox" name="tagless[events][]" value="%s"%s> %s</label><br>', esc_attr($key), checked(in_array($key, $s['events'], true), true, false), esc_html($label));
		}
		echo '</td></tr></table>';
		submit_button('Save settings');
		echo '</form><form method="post" action="' . esc_url(admin_url('admin-post.php')) . '">';
		wp_nonce_field('tagless_test');
		echo '<input type="hidden" name="action" value="tagless_test">';
		submit_button('Send test event', 'secondary');
		echo '</form>';
	}

	private static function render_log(): void {
		echo '<form method="post" action="' . esc_url(admin_url('admin-post.php')) . '">';
		wp_nonce_field('tagless_retry_failed');
		echo '<input type="hidden" name="action" value="tagless_retry_failed">';
		submit_button('Send failed events again', 'secondary');
		echo '</form><table class="widefat striped"><thead><tr><th>Queued (UTC)</th><th>Event</th><th>Event id</th><th>Status</th><th>Attempts</th><th>Next attempt / sent</th><th>Last answer</th></tr></thead><tbody>';
		foreach (Queue::latest() as $row) {
			printf(
				'<tr><td>%s</td><td>%s</td><td><code>%s</code></td><td>%s</td><td>%d</td><td>%s</td><td>%s</td></tr>',
				esc_html($row->created_at),
				esc_html($row->event),
				esc_html($row->message_id),
				esc_html($row->status),
				(int) $row->attempts,
				esc_html($row->status === 'sent' ? (string) $row->sent_at : ($row->status === 'pending' ? $row->next_attempt_at : '')),
				esc_html(trim(($row->last_status ? $row->last_status . ' ' : '') . ($row->last_error ?? '')))
			);
		}
		echo '</tbody></table>';
	}

	private static function guard(string $action): void {
		if (!current_user_can('manage_options')) {
			wp_die('You may not change Tagless settings.', 403);
		}
		check_admin_referer($action);
	}

	private static function notice(string $text, string $kind): void {
		set_transient(self::NOTICE . '_' . get_current_user_id(), ['text' => $text, 'kind' => $kind], 300);
	}

	private static function show_notice(): void {
		$key = self::NOTICE . '_' . get_current_user_id();
		$notice = get_transient($key);
		if (is_array($notice)) {
			delete_transient($key);
			printf('<div class="notice notice-%s"><p>%s</p></div>', esc_attr($notice['kind']), nl2br(esc_html($notice['text'])));
		}
	}

	private static function back(string $tab = ''): never {
		wp_safe_redirect(admin_url('options-general.php?page=' . self::PAGE . ($tab ? "&tab={$tab}" : '')));
		exit;
	}
}
