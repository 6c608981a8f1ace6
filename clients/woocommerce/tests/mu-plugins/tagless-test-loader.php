<?php
/**
 * Loads the WooCommerce fakes and the Tagless plugin for the tests (as the real plugins
 * would be loaded from wp-content/plugins).
 */

require_once dirname(__DIR__) . '/fakes/woocommerce.php';
require_once dirname(__DIR__, 2) . '/tagless.php';

add_filter('pre_wp_mail', '__return_false'); // no mail leaves the tests
