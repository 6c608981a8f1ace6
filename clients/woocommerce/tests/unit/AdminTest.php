<?php
/** The settings screen: checked input, a write key never shown again, the test button, health and log. */

declare(strict_types=1);

use Tagless\Admin;
use Tagless\Queue;
use Tagless\Settings;

final class AdminTest extends TaglessTestCase {
	private function page(string $tab = ''): string {
		wp_set_current_user(1);
		$_GET = $tab ? ['tab' => $tab] : [];
		ob_start();
		Admin::render();
		return (string) ob_get_clean();
	}

	/** Bad input is refused field by field, saying what would be valid, and the saved value is kept. */
	public function test_settings_are_checked(): void {
		[$settings, $errors] = Settings::check(['url' => 'data.example.com', 'write_key' => 'has space', 'trusted_proxies' => "10.0.0.0/8\nlb.internal"]);
		$this->assertStringContainsString('expected http:// or https://', $errors['url']);
		$this->assertStringContainsString('visible ASCII', $errors['write_key']);
		$this->assertStringContainsString('lb.internal is not a CIDR', $errors['trusted_proxies']);
		$this->assertSame('http://tagless.test', $settings['url']);
		$this->assertSame('shop-key', $settings['write_key']);
		[$settings, $errors] = Settings::check(['url' => 'https://data.example.com/', 'write_key' => '', 'trusted_proxies' => "cloudflare 10.0.0.0/8", 'events' => ['purchase', 'nonsense']]);
		$this->assertSame([], $errors);
		$this->assertSame(['url' => 'https://data.example.com', 'write_key' => 'shop-key', 'trusted_proxies' => ['cloudflare', '10.0.0.0/8'], 'events' => ['purchase']], $settings);
	}

	/** The page never prints the write key, only its last four characters. */
	public function test_write_key_is_never_echoed(): void {
		update_option(Settings::OPTION, ['write_key' => 'sk-live-1234567890abcd'] + Settings::get());
		$html = $this->page();
		$this->assertStringNotContainsString('sk-live-1234567890abcd', $html);
		$this->assertStringContainsString('abcd', $html);
		$this->assertStringContainsString('value="http://tagless.test"', $html);
	}

	/** The test button posts one event and shows Tagless's answer. */
	public function test_send_test_event_shows_taglesss_answer(): void {
		[$ok, $text] = Admin::send_test();
		$this->assertTrue($ok);
		$this->assertStringContainsString('Tagless answered 200 {"success":true}', $text);
		$this->assertSame('identify', $this->requests[0]['batch'][0]['type']);
		$this->answers = [self::answer(401, '{"success":false,"error":{"code":"unauthorized"}}')];
		[$ok, $text] = Admin::send_test();
		$this->assertFalse($ok);
		$this->assertStringContainsString('401', $text);
	}

	/** The health line shows the last delivery, the queue and the last error; the log lists each event's outcome. */
	public function test_health_line_and_log(): void {
		$this->answers = [self::answer(503, '{"success":false,"error":{"code":"unavailable","message":"backlog"}}')];
		Queue::add(['type' => 'track', 'event' => 'Order Completed', 'messageId' => 'wc_order_5_purchase', 'anonymousId' => 'a']);
		Queue::flush();
		$html = $this->page();
		$this->assertStringContainsString('Last delivery: never', $html);
		$this->assertStringContainsString('Queue: 1 waiting, 0 failed', $html);
		$this->assertStringContainsString('Tagless answered 503 unavailable', $html);
		$log = $this->page('log');
		$this->assertStringContainsString('wc_order_5_purchase', $log);
		$this->assertStringContainsString('pending', $log);
	}
}
