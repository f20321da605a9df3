// Package ec2lab makes the instances of the EC2 emulator (internal/ec2sim)
// real lab machines: its Booter boots each launched instance as a dockerd in
// its own network namespace (through providers/local), whose engine label
// swarmsync.instance is the EC2 instance id and whose address in the lab
// subnet becomes the instance's private IP, and runs the instance's user
// data the way an EC2 machine would.
//
// The user data runs as root in the machine's network and UTS namespaces
// and in a private mount namespace where /etc/docker is the machine's own
// directory (never the host's). Two shims on PATH stand in for what a lab
// machine lacks: curl answers the instance metadata service (IMDSv2: a PUT
// for a session token, then meta-data reads that must present it) from the
// instance's own data, and passes every other URL to the real curl;
// systemctl accepts only "restart docker", and only when
// /etc/docker/daemon.json carries the engine label the instance must have
// and the running engine reports it (the lab starts dockerd with that label,
// so the restart itself changes nothing). docker talks to the machine's
// engine through DOCKER_HOST, as the default socket would on EC2.
//
// Test-only: never imported by product code. User data is secret (it
// carries join tokens): it is handed to the machine through providers/local,
// never logged or written anywhere readable. It must not touch anything it
// did not create.
package ec2lab
