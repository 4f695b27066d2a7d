CREATE TABLE `users` (
  `id` bigint(20) NOT NULL AUTO_INCREMENT,
  `created_at` datetime(6) NOT NULL,
  `updated_at` datetime(6) NOT NULL,
  `appid` varchar(64) NOT NULL,
  `openid` varchar(128) NOT NULL,
  `unionid` varchar(128) DEFAULT NULL,
  `session_key` varchar(64) NOT NULL DEFAULT '',
  `nickname` varchar(256) NOT NULL DEFAULT '',
  `avatar_url` varchar(1024) NOT NULL DEFAULT '',
  `phone` varchar(32) DEFAULT NULL,
  `phone_country_code` varchar(8) DEFAULT NULL,
  `last_login_at` datetime(6) DEFAULT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `user_appid_openid` (`appid`,`openid`),
  KEY `user_unionid` (`unionid`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE `sessions` (
  `id` varchar(64) NOT NULL,
  `created_at` datetime(6) NOT NULL,
  `updated_at` datetime(6) NOT NULL,
  `appid` varchar(64) NOT NULL,
  `openid` varchar(128) NOT NULL,
  `refresh_hash` varchar(64) NOT NULL,
  `refresh_expires_at` datetime(6) NOT NULL,
  `generation` bigint(20) NOT NULL DEFAULT 0,
  `revoked_at` datetime(6) DEFAULT NULL,
  `revoke_reason` varchar(32) DEFAULT NULL,
  `user_id` bigint(20) NOT NULL,
  PRIMARY KEY (`id`),
  KEY `session_user_id` (`user_id`),
  KEY `session_refresh_expires_at` (`refresh_expires_at`),
  CONSTRAINT `sessions_users_sessions` FOREIGN KEY (`user_id`) REFERENCES `users` (`id`) ON DELETE NO ACTION
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE `access_tokens` (
  `id` bigint(20) NOT NULL AUTO_INCREMENT,
  `token_hash` varchar(64) NOT NULL,
  `user_id` bigint(20) NOT NULL,
  `expires_at` datetime(6) NOT NULL,
  `created_at` datetime(6) NOT NULL,
  `session_id` varchar(64) NOT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `token_hash` (`token_hash`),
  KEY `accesstoken_user_id` (`user_id`),
  KEY `accesstoken_expires_at` (`expires_at`),
  KEY `access_tokens_sessions_access_tokens` (`session_id`),
  CONSTRAINT `access_tokens_sessions_access_tokens` FOREIGN KEY (`session_id`) REFERENCES `sessions` (`id`) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE `revocations` (
  `id` bigint(20) NOT NULL AUTO_INCREMENT,
  `session_id` varchar(64) NOT NULL,
  `user_id` bigint(20) NOT NULL,
  `expires_at` datetime(6) NOT NULL,
  `created_at` datetime(6) NOT NULL,
  PRIMARY KEY (`id`),
  KEY `revocation_session_id` (`session_id`),
  KEY `revocation_expires_at` (`expires_at`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
