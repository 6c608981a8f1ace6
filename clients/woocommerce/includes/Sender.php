<?php
/**
 * One POST of a batch of messages to Tagless's `/v1/batch`, and what its answer means:
 * delivered, retry later (network error, 408, 429, 5xx, 401/403), or one message refused
 * (400 `invalid_event` names it by its `batch[i]` path).
 *
 * @package Tagless
 */

declare(strict_types=1);

namespace Tagless;

final class Sender {
	public const TIMEOUT_SECS = 10;

	/**
	 * @param list<array<string, mixed>> $messages
	 * @return array{outcome: 'delivered'|'retry'|'refused', status: int, error: string, index: ?int, retry_after: ?int, body: string}
	 */
	public static function post(string $url, string $write_key, array $messages): array {
		$answer = wp_remote_post($url . '/v1/batch', [
			'timeout'     => self::TIMEOUT_SECS,
			'redirection' => 0,
			'headers'     => [
				'Authorization' => 'Basic ' . base64_encode($write_key . ':'),
				'Content-Type'  => 'application/json',
				'User-Agent'    => 'tagless-woocommerce/' . TAGLESS_VERSION,
			],
			'body'        => wp_json_encode(['batch' => $messages, 'sentAt' => gmdate('Y-m-d\TH:i:s\Z')]),
		]);
		if (is_wp_error($answer)) {
			return self::outcome('retry', 0, 'Tagless unreachable: ' . $answer->get_error_message());
		}
		$status = (int) wp_remote_retrieve_response_code($answer);
		$body = (string) wp_remote_retrieve_body($answer);
		if ($status >= 200 && $status < 300) {
			return self::outcome('delivered', $status, '', $body);
		}
		$json = json_decode($body, true);
		$error = is_array($json) ? self::error_text($json) : '';
		$retry_after = wp_remote_retrieve_header($answer, 'retry-after');
		$retry_after = is_numeric($retry_after) ? (int) $retry_after : null;
		if ($status === 401 || $status === 403) {
			return self::outcome('retry', $status, "Tagless refused the write key ({$status} {$error}): check the settings", $body, null, $retry_after);
		}
		if ($status === 408 || $status === 429 || $status >= 500) {
			return self::outcome('retry', $status, "Tagless answered {$status} {$error}", $body, null, $retry_after);
		}
		$index = null;
		$path = is_array($json) ? (string) ($json['path'] ?? ($json['error']['path'] ?? '')) : '';
		if (preg_match('/^batch\[(\d+)\]/', $path, $m)) {
			$index = (int) $m[1];
		}
		return self::outcome('refused', $status, "Tagless refused it: {$status} {$error}", $body, $index);
	}

	/** @param array<string, mixed> $json */
	private static function error_text(array $json): string {
		$parts = [];
		foreach ([$json, is_array($json['error'] ?? null) ? $json['error'] : []] as $level) {
			foreach (['code', 'error', 'path', 'message'] as $key) {
				if (is_string($level[$key] ?? null)) {
					$parts[] = $level[$key];
				}
			}
		}
		return mb_substr(implode(' ', array_unique($parts)), 0, 300);
	}

	/** @return array{outcome: 'delivered'|'retry'|'refused', status: int, error: string, index: ?int, retry_after: ?int, body: string} */
	private static function outcome(string $outcome, int $status, string $error, string $body = '', ?int $index = null, ?int $retry_after = null): array {
		return ['outcome' => $outcome, 'status' => $status, 'error' => $error, 'index' => $index, 'retry_after' => $retry_after, 'body' => mb_substr($body, 0, 2000)];
	}
}
