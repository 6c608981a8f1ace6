<?php
/**
 * Loads WordPress core (Debian's /usr/share/wordpress) on its own MariaDB database, with the
 * WooCommerce fakes and this plugin, for the PHPUnit tests and the end-to-end driver.
 *
 * Environment: TAGLESS_WP_DB (database name, created when missing), TAGLESS_WP_DB_HOST
 * (default 127.0.0.1), TAGLESS_WP_DB_USER (root), TAGLESS_WP_DB_PASSWORD (empty),
 * TAGLESS_WP_CORE (default /usr/share/wordpress).
 */

declare(strict_types=1);

/** Creates the database when missing; returns its name. */
function tagless_test_database(): string {
	$name = getenv('TAGLESS_WP_DB') ?: 'tagless_wp_test_' . getmypid();
	if (!preg_match('/^[A-Za-z0-9_]{1,64}$/', $name)) {
		throw new RuntimeException("TAGLESS_WP_DB: expected 1-64 of [A-Za-z0-9_], got {$name}");
	}
	$db = tagless_test_server();
	$db->query("CREATE DATABASE IF NOT EXISTS `{$name}`");
	$db->close();
	return $name;
}

/** Drops the database the tests made. */
function tagless_drop_database(string $name): void {
	$db = tagless_test_server();
	$db->query("DROP DATABASE IF EXISTS `{$name}`");
	$db->close();
}

function tagless_test_server(): mysqli {
	mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);
	return new mysqli(
		getenv('TAGLESS_WP_DB_HOST') ?: '127.0.0.1',
		getenv('TAGLESS_WP_DB_USER') ?: 'root',
		getenv('TAGLESS_WP_DB_PASSWORD') ?: ''
	);
}

/**
 * Defines WordPress's configuration for database $name; the caller then requires
 * ABSPATH . 'wp-settings.php' at file scope (WordPress's globals must be global) and calls
 * tagless_wordpress_ready(). The WooCommerce fakes and the plugin load as must-use plugins.
 */
function tagless_configure_wordpress(string $name): void {
	$core = rtrim(getenv('TAGLESS_WP_CORE') ?: '/usr/share/wordpress', '/') . '/';
	$_SERVER['HTTP_HOST'] ??= 'shop.example';
	$_SERVER['SERVER_NAME'] ??= 'shop.example';
	$_SERVER['REQUEST_URI'] ??= '/';
	$_SERVER['SERVER_PROTOCOL'] ??= 'HTTP/1.1';
	$_SERVER['REQUEST_METHOD'] ??= 'GET';
	define('ABSPATH', $core);
	define('DB_NAME', $name);
	define('DB_USER', getenv('TAGLESS_WP_DB_USER') ?: 'root');
	define('DB_PASSWORD', getenv('TAGLESS_WP_DB_PASSWORD') ?: '');
	define('DB_HOST', getenv('TAGLESS_WP_DB_HOST') ?: '127.0.0.1');
	define('DB_CHARSET', 'utf8mb4');
	define('DB_COLLATE', '');
	define('WP_HOME', 'http://shop.example');
	define('WP_SITEURL', 'http://shop.example');
	define('WPMU_PLUGIN_DIR', __DIR__ . '/mu-plugins');
	define('WP_DEBUG', false);
	define('WP_DEBUG_DISPLAY', false);
	define('DISABLE_WP_CRON', true);
	define('AUTH_KEY', 'test-auth-key');
	define('SECURE_AUTH_KEY', 'test-secure-auth-key');
	define('LOGGED_IN_KEY', 'test-logged-in-key');
	define('NONCE_KEY', 'test-nonce-key');
	define('AUTH_SALT', 'test-auth-salt');
	define('SECURE_AUTH_SALT', 'test-secure-auth-salt');
	define('LOGGED_IN_SALT', 'test-logged-in-salt');
	define('NONCE_SALT', 'test-nonce-salt');
	$GLOBALS['table_prefix'] = 'wp_';
	if (!tagless_installed($name)) {
		define('WP_INSTALLING', true);
	}
}

/** After wp-settings.php: installs the site on first use and activates the plugin. */
function tagless_wordpress_ready(): void {
	if (defined('WP_INSTALLING') && WP_INSTALLING) {
		require_once ABSPATH . 'wp-admin/includes/upgrade.php';
		wp_install('Shop', 'admin', 'admin@shop.example', true, '', 'admin-password');
	}
	if (get_option('tagless_db_version') !== Tagless\Plugin::DB_VERSION) {
		Tagless\Plugin::activate();
	}
	error_reporting(E_ALL & ~E_DEPRECATED); // WordPress 6.1's own deprecations under PHP 8.2
}

function tagless_installed(string $name): bool {
	$db = tagless_test_server();
	$db->select_db($name);
	$found = $db->query("SHOW TABLES LIKE 'wp_options'")->num_rows > 0;
	$db->close();
	return $found;
}
