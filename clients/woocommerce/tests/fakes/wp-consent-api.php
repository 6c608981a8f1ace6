<?php
/**
 * A fake of the WP Consent API plugin's two functions (wp_get_consent_type, wp_has_consent),
 * whose answers a test sets with tagless_fake_consent().
 */

declare(strict_types=1);

/** @param array<string, bool> $granted */
function tagless_fake_consent(?string $type, array $granted): void {
	$GLOBALS['tagless_fake_consent'] = ['type' => $type, 'granted' => $granted];
}

function wp_get_consent_type(): string|false {
	return $GLOBALS['tagless_fake_consent']['type'] ?? false ?: false;
}

function wp_has_consent(string $category): bool {
	return $GLOBALS['tagless_fake_consent']['granted'][$category] ?? false;
}
