<?php
/**
 * Base of the plugin's PHPUnit tests: each test starts from an empty queue, the plugin
 * configured and hooked, a clean request ($_SERVER, $_COOKIE, $_GET), and a fake Tagless
 * answering the plugin's HTTP requests through WordPress's `pre_http_request` filter.
 */

declare(strict_types=1);

use PHPUnit\Framework\TestCase;
use Tagless\Plugin;
use Tagless\Queue;
use Tagless\Settings;

abstract class TaglessTestCase extends TestCase {
	/** @var list<array{url: string, args: array<string, mixed>, batch: list<array<string, mixed>>}> */
	protected array $requests = [];
	/** @var list<array<string, mixed>|WP_Error> answers given in order; the last one repeats */
	protected array $answers = [];
	/** @var array<string, mixed> */
	private array $server;

	protected function setUp(): void {
		global $wpdb;
		$this->server = $_SERVER;
		$wpdb->query('TRUNCATE TABLE ' . Queue::table());
		delete_option(Queue::HEALTH_OPTION);
		update_option(Settings::OPTION, [
			'url' => 'http://tagless.test',
			'write_key' => 'shop-key',
			'trusted_proxies' => ['10.0.0.0/8'],
			'events' => array_keys(Settings::EVENTS),
		]);
		Plugin::loaded();
		$_COOKIE = [];
		$_GET = [];
		$_SERVER['REMOTE_ADDR'] = '81.2.69.142';
		$_SERVER['HTTP_USER_AGENT'] = 'Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0';
		unset($_SERVER['HTTP_X_FORWARDED_FOR'], $_SERVER['HTTP_CF_CONNECTING_IP']);
		$this->requests = [];
		$this->answers = [['response' => ['code' => 200, 'message' => 'OK'], 'body' => '{"success":true}', 'headers' => []]];
		add_filter('pre_http_request', [$this, 'fake_tagless'], 10, 3);
	}

	protected function tearDown(): void {
		remove_filter('pre_http_request', [$this, 'fake_tagless'], 10);
		$_SERVER = $this->server;
	}

	/** @param array<string, mixed> $args @return array<string, mixed>|WP_Error */
	public function fake_tagless(mixed $pre, array $args, string $url): array|WP_Error {
		$body = json_decode((string) $args['body'], true);
		$this->requests[] = ['url' => $url, 'args' => $args, 'batch' => $body['batch'] ?? []];
		$answer = count($this->answers) > 1 ? array_shift($this->answers) : $this->answers[0];
		return $answer instanceof WP_Error ? $answer : $answer + ['cookies' => [], 'filename' => null];
	}

	/** An answer of the fake Tagless. @return array<string, mixed> */
	protected static function answer(int $status, string $body = '', array $headers = []): array {
		return ['response' => ['code' => $status, 'message' => ''], 'body' => $body, 'headers' => $headers];
	}

	/** @return list<array<string, mixed>> every queued message, oldest first */
	protected function queued(?string $status = null): array {
		global $wpdb;
		$where = $status === null ? '' : $wpdb->prepare(' WHERE status = %s', $status);
		$rows = $wpdb->get_results('SELECT payload FROM ' . Queue::table() . $where . ' ORDER BY id');
		return array_map(static fn ($row) => json_decode($row->payload, true), $rows);
	}

	/** @return list<array<string, mixed>> every message the fake Tagless received */
	protected function sent(): array {
		return array_merge(...array_map(static fn ($r) => $r['batch'], $this->requests ?: [['batch' => []]]));
	}

	/** @return list<array<string, mixed>> the queued messages of one event name */
	protected function queued_named(string $event): array {
		return array_values(array_filter($this->queued(), static fn ($m) => ($m['event'] ?? $m['type']) === $event));
	}
}
