# The stage every deployer image's final stage starts from: the base image with a fixed
# non-root user (uid/gid 10001, home /tmp), no setuid/setgid bits and no package manager
# (apt, dpkg, debconf and their state), since a running server never installs anything.
FROM ${base} AS hardened
RUN set -eu \
 && (grep -q '^deployer:' /etc/group || echo 'deployer:x:10001:' >> /etc/group) \
 && (grep -q '^deployer:' /etc/passwd \
     || echo 'deployer:x:10001:10001:deployer:/tmp:/usr/sbin/nologin' >> /etc/passwd) \
 && find / -xdev -perm /6000 -exec chmod ug-s {} + \
 && rm -rf /etc/apt /etc/dpkg /usr/lib/apt /usr/lib/dpkg /usr/share/dpkg /var/lib/apt \
      /var/lib/dpkg /var/cache/apt /var/cache/debconf /var/log/apt /var/log/dpkg.log \
      /usr/bin/apt /usr/bin/apt-* /usr/bin/dpkg /usr/bin/dpkg-* /usr/sbin/dpkg-* \
      /usr/bin/debconf* /usr/sbin/dpkg-preconfigure /usr/sbin/dpkg-reconfigure \
      /usr/bin/update-alternatives /usr/lib/*/libapt-* /usr/share/perl5/Debconf \
 && mkdir -p /tmp && chmod 1777 /tmp
