<?php
/**
 * PHPUnit bootstrap: WordPress core from Debian's package on a fresh MariaDB database (made
 * here, dropped when the run ends), with the WooCommerce fakes and the plugin loaded.
 */

declare(strict_types=1);

require __DIR__ . '/wordpress.php';

$tagless_db = tagless_test_database();
register_shutdown_function(static fn () => tagless_drop_database($tagless_db));
tagless_configure_wordpress($tagless_db);
// PHPUnit includes this file inside a method: WordPress's globals must be declared global
// (as WordPress's own test bootstrap does).
global $wpdb, $table_prefix, $current_site, $current_blog, $wp_rewrite, $shortcode_tags, $wp, $wp_query, $wp_the_query, $wp_theme_directories, $wp_version, $wp_db_version;
$table_prefix = 'wp_';
require ABSPATH . 'wp-settings.php';
tagless_wordpress_ready();
require __DIR__ . '/TaglessTestCase.php';
